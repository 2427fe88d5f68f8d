//go:build linux

package fake_test

import (
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// A fake served on a socket is opened with liveupdate.Open, like the
// kernel's device node, with the same exclusivity.
func TestListen(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	path := filepath.Join(t.TempDir(), "liveupdate")
	stop, err := k.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	d, err := liveupdate.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = liveupdate.Open(path)
	mustErrno(t, err, unix.EBUSY, "second open through the socket")
	_, err = k.Open()
	mustErrno(t, err, unix.EBUSY, "in-process open while a socket client holds the device")
	s, err := d.CreateSession("remote")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if name, err := s.Name(); err != nil || name != "remote" {
		t.Fatalf("name %q, %v", name, err)
	}
	d.Close()
	d2, err := liveupdate.Open(path)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	d2.Close()
	if st := k.State(); len(st.Outgoing) != 1 || st.Outgoing[0].Name != "remote" {
		t.Fatalf("state %+v", st)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := liveupdate.Open(path); err == nil {
		t.Fatal("open after stop succeeded")
	}
}

// A close is seen by the very next request, every time: the fake never
// holds a copy of the user's fd once the user can close it.
func TestCloseIsSeenByNextRequest(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	fd, err := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for i := range 500 {
		s, err := d.CreateSession("again")
		if err != nil {
			t.Fatalf("round %d: create after close: %v", i, err)
		}
		if err := s.PreserveFD(fd, 1); err != nil {
			t.Fatalf("round %d: preserve after the last session closed: %v", i, err)
		}
		s.Close()
	}
}

// Linux 6.19 has no direction check: RETRIEVE_FD on an outgoing session
// reaches the file, and fails without harm.
func TestLinux6_19RetrieveOnOutgoing(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t, fake.WithGeneration(fake.Linux6_19))
	d := faketest.Open(t, k)
	s, err := d.CreateSession("out")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd, _ := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
	defer unix.Close(fd)
	if err := s.PreserveFD(fd, 1); err != nil {
		t.Fatal(err)
	}
	_, err = s.Retrieve(1)
	mustErrno(t, err, unix.EINVAL, "retrieve a preserved file from an outgoing session")
	_, err = s.Retrieve(2)
	mustErrno(t, err, unix.ENOENT, "retrieve an unknown token from an outgoing session")
}

// A device fd connected to a fake's socket can be handed to another
// holder and wrapped with NewDevice.
func TestNewDeviceOnListenConnection(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	path := faketest.Listen(t, k)
	d, err := liveupdate.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := liveupdate.NewDevice(d.Fd())
	d.Close() // w holds a dup
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := w.CreateSession("through-a-wrapped-device")
	if err != nil {
		t.Fatalf("create through a wrapped fake device: %v", err)
	}
	s.Close()
}
