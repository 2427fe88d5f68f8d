//go:build linux

package liveupdate

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRawIoctlDevNull(t *testing.T) {
	requireKernelIoctl(t)
	d := openDevNull(t)
	for _, c := range []Command{CmdCreateSession, CmdRetrieveSession, CmdPreserveFD, CmdRetrieveFD, CmdFinish, CmdGetName, 0x44, 0x02} {
		// This architecture's encoding, asm-generic's, powerpc's, and
		// an _IOWR-style word.
		for _, req := range []uint32{c.Request(), 0xBA00 | uint32(c), 0x2000BA00 | uint32(c), 0xC048BA00 | uint32(c)} {
			arg := make([]byte, 72)
			(&CreateSessionArgs{Size: 72, FD: -1}).Encode(arg)
			want := bytes.Clone(arg)
			err := d.RawIoctl(req, arg)
			if err != unix.ENOTTY {
				t.Errorf("RawIoctl(%#x) on /dev/null = %v (%T), want bare ENOTTY", req, err, err)
			}
			if !bytes.Equal(arg, want) {
				t.Errorf("RawIoctl(%#x) on /dev/null changed the argument", req)
			}
		}
	}
	if err := d.RawIoctl(CmdFinish.Request(), nil); err != unix.ENOTTY {
		t.Errorf("RawIoctl(nil arg) = %v, want ENOTTY", err)
	}
}

func TestRawIoctlClosed(t *testing.T) {
	d := closedDevice(t)
	arg := make([]byte, 72)
	if err := d.RawIoctl(CmdCreateSession.Request(), arg); err != ErrClosed {
		t.Errorf("RawIoctl on a closed device = %v, want ErrClosed", err)
	}
	if err := d.RawIoctl(CmdCreateSession.Request(), nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("RawIoctl on a closed device = %v, want os.ErrClosed", err)
	}
	if !bytes.Equal(arg, make([]byte, 72)) {
		t.Errorf("RawIoctl on a closed device wrote % x", arg)
	}
}

func TestRawIoctlBadFD(t *testing.T) {
	requireKernelIoctl(t)
	if err := bogusDevice(t).RawIoctl(CmdGetName.Request(), make([]byte, 72)); err != unix.EBADF {
		t.Errorf("RawIoctl on a bad fd = %v, want EBADF", err)
	}
}

func TestIsSessionNot(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	stream, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(stream[0])
	defer unix.Close(stream[1])
	memfd, err := unix.MemfdCreate("luo-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(memfd)
	id := fakeAddr(true, "x")[len("luo-fake "):][:16]

	for _, tc := range []struct {
		what string
		fd   int
	}{
		{"/dev/null", int(null.Fd())},
		{"pipe read end", pipe[0]},
		{"pipe write end", pipe[1]},
		{"seqpacket socketpair", pair[0]},
		{"stream socketpair", stream[1]},
		{"memfd", memfd},
		{"abstract socket", boundSocket(t, uniqueName("luo-test-not-fake-"))},
		{"abstract socket named like a kernel session", boundSocket(t, "anon_inode:[luo_session] "+uniqueName("x"))},
		{"abstract socket, fake prefix, bad id", boundSocket(t, "luo-fake zzzzzzzzzzzzzzzz [luo_session] "+uniqueName("x"))},
		{"abstract socket, fake prefix, unknown tag", boundSocket(t, "luo-fake "+id+" [luo_other] "+uniqueName("x"))},
		{"abstract socket, fake device", boundSocket(t, fakeAddr(false, ""))},
	} {
		if IsSession(tc.fd) {
			t.Errorf("IsSession(%s) = true", tc.what)
		}
		before := countFDs(t)
		s, err := NewSession(tc.fd)
		if s != nil || !errors.Is(err, ErrNotSession) {
			t.Errorf("NewSession(%s) = %v, %v; want ErrNotSession", tc.what, s, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "wrap session fd" {
			t.Errorf("NewSession(%s) error = %#v", tc.what, err)
		}
		if after := countFDs(t); after != before {
			t.Errorf("NewSession(%s): %d fds before, %d after", tc.what, before, after)
		}
	}
	if IsSession(-1) || IsSession(1<<20) {
		t.Error("IsSession of a bad fd = true")
	}
}

func TestNewSessionDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	fd := int(null.Fd())
	before := countFDs(t)
	s, err := NewSession(fd)
	if s != nil {
		t.Fatalf("NewSession(/dev/null) = %v", s)
	}
	if !errors.Is(err, ErrNotSession) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("NewSession(/dev/null) = %v, want ErrNotSession and EINVAL", err)
	}
	if !strings.Contains(err.Error(), "/dev/null") {
		t.Errorf("NewSession error %q does not say what the fd is", err)
	}
	if after := countFDs(t); after != before {
		t.Errorf("NewSession(/dev/null) leaked: %d fds before, %d after", before, after)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("NewSession closed the caller's fd: %v", err)
	}
}

// TestNewSessionFakeAddress is the positive control of the tests above: a
// socket bound to a fake session's address is recognised, wrapped with a
// dup, and released by Close.
func TestNewSessionFakeAddress(t *testing.T) {
	fd := boundSocket(t, fakeAddr(true, "ctl session"))
	if !IsSession(fd) {
		t.Fatal("IsSession(fake session address) = false")
	}
	before := countFDs(t)
	s, err := NewSession(fd)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	if got := countFDs(t); got != before+1 {
		t.Errorf("NewSession: %d fds, want %d (one dup)", got, before+1)
	}
	sfd := s.Fd()
	if sfd == fd || sfd < 0 {
		t.Errorf("Session.Fd() = %d, caller's fd %d", sfd, fd)
	}
	if fl, err := unix.FcntlInt(uintptr(sfd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("session fd flags %#x, %v: want close-on-exec", fl, err)
	}
	if s.String() != `luo session "ctl session"` || s.Direction() != 0 {
		t.Errorf("String() = %q, Direction() = %v", s.String(), s.Direction())
	}
	if s.b != backendFake {
		t.Errorf("backend = %d, want fake", s.b)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := countFDs(t); got != before {
		t.Errorf("after Close: %d fds, want %d", got, before)
	}
	if !IsSession(fd) {
		t.Error("Close closed the caller's fd")
	}

	// Every call on the closed session fails with ErrClosed, naming itself.
	if err := s.RawIoctl(CmdFinish.Request(), make([]byte, 8)); err != ErrClosed {
		t.Errorf("RawIoctl after Close = %v, want ErrClosed", err)
	}
	for _, tc := range []struct {
		op  Op
		err error
	}{
		{"close", s.Close()},
		{"finish", s.Finish()},
		{"preserve", s.PreserveFD(0, 0x10)},
		{"retrieve", func() error { _, err := s.Retrieve(0x11); return err }()},
		{"get name", func() error { _, err := s.Name(); return err }()},
	} {
		var e *Error
		if !errors.Is(tc.err, ErrClosed) || !errors.Is(tc.err, os.ErrClosed) || !errors.As(tc.err, &e) || e.Op != tc.op {
			t.Errorf("%s after Close = %v, want *Error{Op: %q} matching ErrClosed", tc.op, tc.err, tc.op)
			continue
		}
		if e.Session != "ctl session" {
			t.Errorf("%s after Close: Session %q", tc.op, e.Session)
		}
	}
	if s.Fd() != -1 {
		t.Errorf("Fd() after Close = %d", s.Fd())
	}
}

func TestPreserveNegativeFD(t *testing.T) {
	fd := boundSocket(t, fakeAddr(true, "neg"))
	s, err := NewSession(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.PreserveFD(-1, 0x42)
	var e *Error
	if !errors.Is(err, unix.EBADF) || !errors.As(err, &e) || e.Op != "preserve" || e.FD != -1 || e.Token != 0x42 {
		t.Errorf("PreserveFD(-1) = %#v, want EBADF before any request", err)
	}
}
