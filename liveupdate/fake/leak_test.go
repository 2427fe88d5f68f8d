//go:build linux

package fake_test

import (
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fdtest"
)

// checkFDs fails the test if it ends with file descriptors open that were
// not open when it started: the fake's and the test's own must all be
// closed. Call it first, so its cleanup runs after everything else.
func checkFDs(t *testing.T) {
	t.Helper()
	fdtest.Check(t, 500*time.Millisecond) // a close may still be finishing on another goroutine
}
