//go:build linux

package fake

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-luo/luo/internal/fakewire"
	"golang.org/x/sys/unix"
)

// Listen serves the fake's device on a unix socket at path, so that other
// processes reach this kernel as they would /dev/liveupdate:
// liveupdate.Open(path) opens it (exclusively, as the kernel's open does),
// and sessions created through it live in this process's fake. A daemon's
// tests, or a benchmark that needs more fds than one process may hold, use
// it. An open there fails as Open does, with only the errno: EBUSY, or
// EIO after a failed restore and on a machine that did not come up from a
// Kexec. The socket is removed when the returned stop function or Close is
// called.
//
// While the process has no fd to spare (EMFILE, ENFILE), the fake stops
// accepting and tries again after a pause of up to a second; connections
// wait in the socket's backlog meanwhile. liveupdate.Open(path) waits at
// most fakewire.DialTimeout (30 seconds) for its answer, and otherwise
// fails with an error matching unix.ETIMEDOUT: it never blocks for ever on
// a fake that does not answer (a stopped process, say).
func (k *Kernel) Listen(path string) (stop func() error, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// Connections inherit SO_PASSCRED, so that even a message sent before
	// the fake adopts a connection carries credentials (see recvMessage).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, err
	}
	l := &listener{k: k, fd: fd, path: path, quit: make(chan struct{}), done: make(chan struct{})}
	k.objsMu.Lock()
	if k.closed {
		k.objsMu.Unlock()
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("fake: listen on %s: %w", path, ErrKernelClosed)
	}
	k.listeners = append(k.listeners, l)
	k.objsMu.Unlock()
	go l.serve()
	return l.stop, nil
}

type listener struct {
	k    *Kernel
	fd   int
	path string
	quit chan struct{} // closed by stop
	done chan struct{} // closed when serve returns
	once sync.Once
	err  error
}

// Accept backs off this long after an accept fails for want of an fd or
// memory, doubling up to maxAcceptDelay, as net/http's server does.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// serve accepts connections until stop. An accept that fails for want of
// a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM) is tried again after a
// pause: the connection waits in the backlog meanwhile, and the dial side
// waits for the open's answer at most fakewire.DialTimeout.
func (l *listener) serve() {
	defer close(l.done)
	var delay time.Duration
	for {
		conn, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			delay = 0
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			select {
			case <-l.quit:
				return
			case <-time.After(delay):
			}
			continue
		default:
			return // stopped: the socket is shut down (EINVAL)
		}
		l.k.reap()
		if err := l.k.boot().openDeviceConn(conn); err != nil {
			errno := toErrno(err)
			if errors.Is(err, unix.EIO) {
				errno = unix.EIO
			}
			answerOpen(conn, errno)
			unix.Close(conn)
		}
	}
}

// answerOpen writes the open's answer, the one message the fake sends on
// a connection to Listen's socket; it cannot block, as nothing else is
// ever sent there. The fake then shuts its sending side down, so that a
// read(2) of the device fd ends at once (see newObject).
func answerOpen(conn int, errno unix.Errno) {
	var h [fakewire.ReplyHeaderLen]byte
	fakewire.EncodeReply(&h, errno, 0)
	unix.Write(conn, h[:])
	unix.Shutdown(conn, unix.SHUT_WR)
}

// stop stops accepting and removes the socket.
func (l *listener) stop() error {
	l.once.Do(func() {
		// shutdown wakes the blocked accept; quit, the back-off.
		close(l.quit)
		unix.Shutdown(l.fd, unix.SHUT_RDWR)
		<-l.done
		unix.Close(l.fd)
		l.err = os.Remove(l.path)
	})
	return l.err
}
