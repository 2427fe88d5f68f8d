//go:build linux

package liveupdate_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// The sentinels match their case only, and the errno always.
func TestSentinels(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	_, err := k.Open()
	if !errors.Is(err, liveupdate.ErrDeviceBusy) || !errors.Is(err, unix.EBUSY) {
		t.Errorf("second open: %v does not match ErrDeviceBusy and EBUSY", err)
	}
	s1, _ := d.CreateSession("one")
	defer s1.Close()
	s2, _ := d.CreateSession("two")
	defer s2.Close()
	_, err = d.CreateSession("one")
	if !errors.Is(err, os.ErrExist) || errors.Is(err, liveupdate.ErrDeviceBusy) {
		t.Errorf("duplicate create: %v", err)
	}
	fd, _ := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
	defer unix.Close(fd)
	if err := s1.PreserveFD(fd, 1); err != nil {
		t.Fatal(err)
	}
	err = s2.PreserveFD(fd, 1)
	if !errors.Is(err, liveupdate.ErrAlreadyPreserved) || !errors.Is(err, unix.EBUSY) || errors.Is(err, liveupdate.ErrDeviceBusy) {
		t.Errorf("double preserve: %v", err)
	}
	_, err = d.RetrieveSession("nope")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, liveupdate.ErrAlreadyRetrieved) {
		t.Errorf("retrieve unknown: %v", err)
	}
	d.Close()
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	d, _ = k.Open()
	defer d.Close()
	in, err := d.RetrieveSession("one")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	_, err = d.RetrieveSession("one")
	if !errors.Is(err, liveupdate.ErrAlreadyRetrieved) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("second retrieve: %v", err)
	}
}

// A name refused before the request is sent matches EINVAL and
// ErrInvalidName, not ErrAlreadyRetrieved: that sentinel is the kernel's
// answer to a second retrieve only.
func TestSentinelsNotForRefusalsBeforeTheKernel(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	for _, name := range []string{"", strings.Repeat("n", liveupdate.MaxNameLen+1), "nul\x00inside"} {
		_, err := d.RetrieveSession(name)
		if !errors.Is(err, liveupdate.ErrInvalidName) || !errors.Is(err, unix.EINVAL) {
			t.Errorf("RetrieveSession(%q): %v, want ErrInvalidName and EINVAL", name, err)
		}
		if errors.Is(err, liveupdate.ErrAlreadyRetrieved) {
			t.Errorf("RetrieveSession(%q): %v matches ErrAlreadyRetrieved", name, err)
		}
	}
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PreserveFD(-1, 1); errors.Is(err, liveupdate.ErrAlreadyPreserved) || !errors.Is(err, unix.EBADF) {
		t.Errorf("PreserveFD(-1): %v", err)
	}
}

// ErrClosed matches os.ErrClosed by identity, not any error of that text.
func TestErrClosedIdentity(t *testing.T) {
	if !errors.Is(liveupdate.ErrClosed, os.ErrClosed) || !errors.Is(liveupdate.ErrClosed, fs.ErrClosed) {
		t.Error("ErrClosed does not match os.ErrClosed")
	}
	sameText := fmt.Errorf("file already closed")
	if liveupdate.ErrClosed.(interface{ Is(error) bool }).Is(sameText) {
		t.Error("ErrClosed matches another error with the same text")
	}
	k := faketest.New(t)
	d := faketest.Open(t, k)
	d.Close()
	if err := d.Close(); !errors.Is(err, liveupdate.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}
