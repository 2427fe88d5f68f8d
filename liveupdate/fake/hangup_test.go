//go:build linux

package fake_test

import (
	"testing"

	"github.com/go-luo/luo/liveupdate/fake/faketest"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// A write(2) to a LUO fd changes nothing (the kernel's files have no write
// operation: vfs_write answers EINVAL); only the last close releases.
// On the fake's sockets a write is a message that is not a request: it
// must be dropped, and a message of no bytes, which reads like the end of
// file, must not pass for the hang-up.
func TestWriteIsNotAHangUp(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	defer d.Close()
	s, err := d.CreateSession("written-to")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfd, err := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	if err := s.PreserveFD(mfd, 1); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		what string
		do   func(fd int) error
	}{
		{"write of no bytes", func(fd int) error { _, err := unix.Write(fd, nil); return err }},
		{"sendmsg of no bytes", func(fd int) error { return unix.Sendmsg(fd, nil, nil, nil, 0) }},
		{"write of bytes that are no request", func(fd int) error { _, err := unix.Write(fd, []byte("hello")); return err }},
	}
	for _, w := range writes {
		if err := w.do(s.Fd()); err != nil {
			t.Fatalf("%s on the session fd: %v", w.what, err)
		}
		// The next request on the fd is read after the write: it must be
		// answered by the same session.
		if name, err := s.Name(); err != nil || name != "written-to" {
			t.Fatalf("after a %s on the session fd: name %q, %v", w.what, name, err)
		}
		if err := w.do(d.Fd()); err != nil {
			t.Fatalf("%s on the device fd: %v", w.what, err)
		}
		s2, err := d.CreateSession("after " + w.what)
		if err != nil {
			t.Fatalf("after a %s on the device fd: %v", w.what, err)
		}
		s2.Close()
		_, err = k.Open()
		mustErrno(t, err, unix.EBUSY, "open after a "+w.what+" on the device fd")
	}
	st := k.State()
	if !st.DeviceOpen || len(st.Outgoing) != 1 || st.Outgoing[0].Name != "written-to" || len(st.Outgoing[0].Files) != 1 {
		t.Fatalf("state after the writes: %+v", st)
	}
}

// A read(2) of a LUO fd returns at once (EINVAL on the kernel, whose files
// have no read operation). The fake's answer is no bytes, as the fake
// sends nothing on an object's socket; it must never block.
func TestReadDoesNotBlock(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	defer d.Close()
	s, err := d.CreateSession("read")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, fd := range []struct {
		what string
		fd   int
	}{{"device", d.Fd()}, {"session", s.Fd()}} {
		// A generous bound: the answer is immediate or never.
		pfd := []unix.PollFd{{Fd: int32(fd.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 30_000)
		if err != nil || n != 1 {
			t.Fatalf("%s fd: a read would block (poll %d, %v)", fd.what, n, err)
		}
		var buf [16]byte
		if n, err := unix.Read(fd.fd, buf[:]); n != 0 || err != nil {
			t.Fatalf("%s fd: read %d bytes, %v; want 0, nil", fd.what, n, err)
		}
	}
	if name, err := s.Name(); err != nil || name != "read" {
		t.Fatalf("after the reads: name %q, %v", name, err)
	}
}

// The same holds for a device fd opened through Listen's socket, whose
// first message was the open's answer.
func TestListenDeviceWriteAndRead(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	path := faketest.Listen(t, k)
	d, err := liveupdate.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := unix.Write(d.Fd(), nil); err != nil {
		t.Fatal(err)
	}
	s, err := d.CreateSession("after-write")
	if err != nil {
		t.Fatalf("after a write of no bytes: %v", err)
	}
	s.Close()
	_, err = liveupdate.Open(path)
	mustErrno(t, err, unix.EBUSY, "open after a write of no bytes on the device fd")
	pfd := []unix.PollFd{{Fd: int32(d.Fd()), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 30_000); err != nil || n != 1 {
		t.Fatalf("a read would block (poll %d, %v)", n, err)
	}
	var buf [16]byte
	if n, err := unix.Read(d.Fd(), buf[:]); n != 0 || err != nil {
		t.Fatalf("read %d bytes, %v; want 0, nil", n, err)
	}
}
