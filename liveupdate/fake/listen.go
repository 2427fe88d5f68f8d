//go:build linux

package fake

import (
	"errors"
	"os"
	"sync"

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
	l := &listener{k: k, fd: fd, path: path, done: make(chan struct{})}
	k.objsMu.Lock()
	if k.closed {
		k.objsMu.Unlock()
		unix.Close(fd)
		os.Remove(path)
		return nil, errors.New("fake: kernel closed")
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
	done chan struct{}
	once sync.Once
	err  error
}

func (l *listener) serve() {
	defer close(l.done)
	for {
		conn, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return // stopped
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
		// shutdown wakes the blocked accept.
		unix.Shutdown(l.fd, unix.SHUT_RDWR)
		<-l.done
		unix.Close(l.fd)
		l.err = os.Remove(l.path)
	})
	return l.err
}
