package faketest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Memfd returns a new memfd (close-on-exec) holding content, its position
// at the end, failing the test (Fatal) when it cannot be made; it is
// closed when the test ends unless the test has. A memfd is what the
// fake's default handler preserves, as the kernel's does.
func Memfd(t testing.TB, content string) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("faketest", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:faketest")
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(content); err != nil {
		t.Fatalf("write the memfd: %v", err)
	}
	return f
}
