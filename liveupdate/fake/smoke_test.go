//go:build linux

package fake_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

func TestSmokeKexec(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	if _, err := k.Open(); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("second open: %v", err)
	}
	s, err := d.CreateSession("vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSession("vm-1"); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("dup: %v", err)
	}
	mfd, _ := unix.MemfdCreate("state", unix.MFD_CLOEXEC)
	m := os.NewFile(uintptr(mfd), "state")
	m.WriteString("hello kexec world")
	if err := s.Preserve(m, 0x1a); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 0x1b); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("double: %v", err)
	}
	name, err := s.Name()
	if err != nil || name != "vm-1" {
		t.Fatalf("name %q %v", name, err)
	}
	d.Close()
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); !errors.Is(err, unix.ESTALE) {
		t.Fatalf("stale: %v", err)
	}
	s.Close()
	m.Close()
	d2, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	in, err := d2.RetrieveSession("vm-1")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(0x1a)
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "hello kexec world" {
		t.Fatalf("got %q", b)
	}
	if err := in.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Retrieve(0x1a); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("after finish: %v", err)
	}
}
