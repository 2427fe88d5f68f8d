//go:build !linux

package faketest

import (
	"os"
	"runtime"
	"testing"
)

// Memfd skips the test: memfds are Linux's, as is the fake.
func Memfd(t testing.TB, content string) *os.File {
	t.Helper()
	t.Skipf("memfds need Linux, not %s", runtime.GOOS)
	return nil
}
