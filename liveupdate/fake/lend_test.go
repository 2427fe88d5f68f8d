//go:build linux

package fake

import (
	"testing"

	"golang.org/x/sys/unix"
)

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// A file dropped while a reply carries its fd keeps the fd open until the
// last reply in flight is done with it, and closes it then, once.
func TestDropWhileLent(t *testing.T) {
	fd, err := unix.MemfdCreate("lent", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := &file{hf: HandlerFile{FD: fd}}
	if got := f.lend(); got != fd {
		t.Fatalf("lend = %d, want %d", got, fd)
	}
	f.lend()
	f.drop()
	if f.hf.FD != -1 {
		t.Fatalf("after drop, hf.FD = %d, want -1", f.hf.FD)
	}
	f.unlend()
	if !fdOpen(fd) {
		t.Fatal("fd closed while a reply still carries it")
	}
	f.unlend()
	if fdOpen(fd) {
		unix.Close(fd)
		t.Fatal("fd still open after the last reply carrying it")
	}
	// A number the last unlend closed may be taken again at once; later
	// lends and drops must not close it a second time.
	again, err := unix.MemfdCreate("again", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(again)
	f.lend()
	f.unlend()
	f.drop()
	if !fdOpen(again) {
		t.Fatal("a finished lend closed an fd again")
	}
}

// Without a reply in flight, drop closes the fd at once.
func TestDropNotLent(t *testing.T) {
	fd, err := unix.MemfdCreate("kept", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := &file{hf: HandlerFile{FD: fd}}
	f.lend()
	f.unlend()
	if !fdOpen(fd) {
		t.Fatal("unlend closed a file that was not dropped")
	}
	f.drop()
	if fdOpen(fd) {
		unix.Close(fd)
		t.Fatal("drop left the fd open")
	}
}
