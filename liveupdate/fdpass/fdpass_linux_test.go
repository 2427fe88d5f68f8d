package fdpass

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/testexec"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// pair returns the two ends of a unix socketpair of type typ, closed at
// the end of the test.
func pair(t *testing.T, typ int) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// kernel starts a fake kernel and opens its device, both closed at the end
// of the test; it checks first that the test leaks no fd.
func kernel(t *testing.T) (*fake.Kernel, *liveupdate.Device) {
	t.Helper()
	fdtest.Check(t, time.Second)
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.CheckInvariants(); err != nil {
			t.Error(err)
		}
		k.Close()
	})
	dev, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return k, dev
}

func create(t *testing.T, dev *liveupdate.Device, name string) *liveupdate.Session {
	t.Helper()
	s, err := dev.CreateSession(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sendRaw sends msg with fds as one sendmsg.
func sendRaw(t *testing.T, c *net.UnixConn, msg []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(msg, oob, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSendReceive passes an outgoing session over a stream and a seqpacket
// socket and checks that the received one has its name and direction and
// is the same session.
func TestSendReceive(t *testing.T) {
	for _, typ := range []struct {
		name string
		typ  int
	}{{"stream", unix.SOCK_STREAM}, {"seqpacket", unix.SOCK_SEQPACKET}} {
		t.Run(typ.name, func(t *testing.T) {
			k, dev := kernel(t)
			s := create(t, dev, "vm-1")
			a, b := pair(t, typ.typ)
			if err := Send(a, s); err != nil {
				t.Fatal(err)
			}
			r, err := Receive(b)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if d := r.Direction(); d != liveupdate.Outgoing {
				t.Errorf("received Direction %v, want Outgoing", d)
			}
			if name, err := r.Name(); err != nil || name != "vm-1" {
				t.Errorf("received Name = %q, %v; want vm-1", name, err)
			}
			// The same session: closing the sender's copy keeps it.
			s.Close()
			if n := len(k.State().Outgoing); n != 1 {
				t.Errorf("%d outgoing sessions with the received copy open, want 1", n)
			}
		})
	}
}

// TestSendReceiveIncoming passes a session retrieved after a kexec: it
// arrives as Incoming.
func TestSendReceiveIncoming(t *testing.T) {
	k, dev := kernel(t)
	create(t, dev, "vm-1")
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	dev2, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer dev2.Close()
	in, err := dev2.RetrieveSession("vm-1")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	a, b := pair(t, unix.SOCK_STREAM)
	if err := Send(a, in); err != nil {
		t.Fatal(err)
	}
	r, err := Receive(b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d := r.Direction(); d != liveupdate.Incoming {
		t.Errorf("received Direction %v, want Incoming", d)
	}
	if err := r.Finish(); err != nil {
		t.Errorf("Finish on the received session: %v", err)
	}
}

// TestReceiveTwice reads two messages sent back to back on a stream: each
// Receive takes one.
func TestReceiveTwice(t *testing.T) {
	_, dev := kernel(t)
	s1, s2 := create(t, dev, "one"), create(t, dev, "two")
	a, b := pair(t, unix.SOCK_STREAM)
	for _, s := range []*liveupdate.Session{s1, s2} {
		if err := Send(a, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "two"} {
		r, err := Receive(b)
		if err != nil {
			t.Fatal(err)
		}
		name, err := r.Name()
		r.Close()
		if err != nil || name != want {
			t.Errorf("Name = %q, %v; want %q", name, err, want)
		}
	}
}

// TestSendClosed refuses a closed session.
func TestSendClosed(t *testing.T) {
	_, dev := kernel(t)
	s := create(t, dev, "x")
	s.Close()
	a, _ := pair(t, unix.SOCK_STREAM)
	if err := Send(a, s); !errors.Is(err, liveupdate.ErrClosed) {
		t.Errorf("Send of a closed session: %v, want ErrClosed", err)
	}
}

// TestReceiveErrors sends what Send never does and checks each error and
// that no received fd stays open (kernel's fdtest.Check).
func TestReceiveErrors(t *testing.T) {
	good := encode("vm-1", liveupdate.Outgoing)
	bad := func(edit func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		edit(b)
		return b
	}
	memfd := func(t *testing.T) int {
		fd, err := unix.MemfdCreate("not-a-session", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	isError := func(err error) bool { var e *Error; return errors.As(err, &e) }
	for _, tc := range []struct {
		name string
		typ  int
		send func(t *testing.T, c *net.UnixConn, s *liveupdate.Session)
		want func(error) bool
	}{
		{"peer closes", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) { c.Close() },
			func(err error) bool { return errors.Is(err, io.EOF) }},
		{"peer closes mid-message", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, good[:10], s.Fd())
			c.Close()
		}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"no fd", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) { sendRaw(t, c, good) }, isError},
		{"two fds", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, good, s.Fd(), s.Fd())
		}, isError},
		{"too many fds", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			if testexec.UnderQEMUUser() {
				// qemu-user receives every fd into the process and
				// hands on only as many as the buffer holds, without
				// MSG_CTRUNC: the rest leak in the emulator.
				t.Skip("qemu-user does not truncate SCM_RIGHTS as the kernel does")
			}
			fd := s.Fd()
			sendRaw(t, c, good, fd, fd, fd, fd, fd, fd, fd, fd)
		}, isError},
		{"bad magic", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, bad(func(b []byte) { b[0] = 'X' }), s.Fd())
		}, isError},
		{"bad version", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, bad(func(b []byte) { b[4] = 2 }), s.Fd())
		}, isError},
		{"bad direction", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, bad(func(b []byte) { b[5] = 3 }), s.Fd())
		}, isError},
		{"long name", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, bad(func(b []byte) { b[6] = 64 }), s.Fd())
		}, isError},
		{"bytes after the name", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, bad(func(b []byte) { b[MessageLen-1] = 'x' }), s.Fd())
		}, isError},
		{"other name", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, encode("vm-2", liveupdate.Outgoing), s.Fd())
		}, isError},
		{"not a session", unix.SOCK_STREAM, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, good, memfd(t))
		}, func(err error) bool { return errors.Is(err, liveupdate.ErrNotSession) }},
		{"short packet", unix.SOCK_SEQPACKET, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, good[:10], s.Fd())
		}, isError},
		{"long packet", unix.SOCK_SEQPACKET, func(t *testing.T, c *net.UnixConn, s *liveupdate.Session) {
			sendRaw(t, c, append(append([]byte(nil), good...), 0), s.Fd())
		}, isError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dev := kernel(t)
			s := create(t, dev, "vm-1")
			a, b := pair(t, tc.typ)
			tc.send(t, a, s)
			r, err := Receive(b)
			if err == nil {
				r.Close()
				t.Fatal("Receive succeeded")
			}
			if !tc.want(err) {
				t.Errorf("Receive: %v (%T), not the error wanted", err, err)
			}
			t.Log(err)
		})
	}
}

// TestDecodeRoundTrip checks that decode reads what encode writes.
func TestDecodeRoundTrip(t *testing.T) {
	for _, dir := range []liveupdate.Direction{0, liveupdate.Outgoing, liveupdate.Incoming} {
		name := "n-" + dir.String()
		got, gotDir, err := decode(encode(name, dir))
		if err != nil || got != name || gotDir != dir {
			t.Errorf("decode(encode(%q, %v)) = %q, %v, %v", name, dir, got, gotDir, err)
		}
	}
}
