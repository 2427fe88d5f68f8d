//go:build linux

package fakewire

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fdtest"
	"golang.org/x/sys/unix"
)

// listenNoAccept makes a unix socket at path that listens with this
// backlog and never accepts: a fake kernel whose process has stopped.
func listenNoAccept(t *testing.T, backlog int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "liveupdate")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustTimeOut(t *testing.T, fd int, err error, what string) {
	t.Helper()
	if err == nil {
		unix.Close(fd)
		t.Fatalf("%s: dial succeeded", what)
	}
	var te interface{ Timeout() bool }
	if !errors.Is(err, unix.ETIMEDOUT) || !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("%s: %v; want a timeout matching ETIMEDOUT", what, err)
	}
}

// A dial waits a bounded time for a fake that does not answer, and then
// fails with a timeout: whether its connection waits in the backlog, or
// cannot even get there.
func TestDialTimesOut(t *testing.T) {
	fdtest.Check(t, 500*time.Millisecond)
	path := listenNoAccept(t, 4)
	fd, err := dial(path, 50*time.Millisecond)
	mustTimeOut(t, fd, err, "dial of a fake that never answers")

	// Backlog 0 takes one connection, and then none.
	path = listenNoAccept(t, 0)
	held, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(held)
	if err := unix.Connect(held, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	fd, err = dial(path, 50*time.Millisecond)
	mustTimeOut(t, fd, err, "dial of a fake whose backlog is full")
}

// A fake that answers leaves the dialled fd without timeouts: requests on
// it wait as long as the kernel's ioctls do.
func TestDialClearsTimeouts(t *testing.T) {
	fdtest.Check(t, 500*time.Millisecond)
	path := filepath.Join(t.TempDir(), "liveupdate")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan int, 1)
	go func() {
		c, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			accepted <- -1
			return
		}
		var h [ReplyHeaderLen]byte
		EncodeReply(&h, 0, 0)
		unix.Write(c, h[:])
		accepted <- c
	}()
	fd, err := dial(path, time.Hour)
	c := <-accepted
	if c >= 0 {
		defer unix.Close(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, opt := range []int{unix.SO_SNDTIMEO, unix.SO_RCVTIMEO} {
		tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, opt)
		if err != nil || tv.Sec != 0 || tv.Usec != 0 {
			t.Errorf("option %d after the dial: %+v, %v; want no timeout", opt, tv, err)
		}
	}
}
