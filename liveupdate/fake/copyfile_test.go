//go:build linux

package fake

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// copyFile falls back to reads and writes where copy_file_range refuses
// the pair (EXDEV: a file of another file system than the memfd's), and
// copies the same bytes either way.
func TestCopyFileFallback(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 70000) // 1.1 MB
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(src.Fd()), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary directory is on tmpfs, where copy_file_range from it to a memfd works")
	}
	dst, err := unix.MemfdCreate("dst", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dst)
	var soff, doff int64
	if _, err := unix.CopyFileRange(int(src.Fd()), &soff, dst, &doff, 1, 0); err == nil {
		t.Skip("copy_file_range copies from this file system to a memfd: no fallback to test")
	}
	if err := copyFile(dst, int(src.Fd()), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data)+1)
	n, _ := unix.Pread(dst, got, 0)
	if !bytes.Equal(got[:n], data) {
		t.Fatalf("copied %d bytes, want the %d of the file", n, len(data))
	}
}
