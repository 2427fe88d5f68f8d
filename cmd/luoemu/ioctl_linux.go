//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"encoding/binary"
	"errors"

	"github.com/go-luo/luo/internal/fakewire"
	"github.com/go-luo/luo/internal/luoabi"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

var native = binary.NativeEndian

// serveIoctl answers ioctl(fd, req, argp), req of type 0xBA, when fd is
// a fake device or session fd in the notifying task; any other fd's
// ioctl goes on to the kernel unchanged.
//
// The request runs on a duplicate of the task's fd (pidfd_getfd), so a
// close of it in the tree meanwhile releases it only after the request,
// as the kernel's fdget holds a file. The argument is read from the task
// as the kernel reads it (the size field, then size bytes: a fault
// anywhere gives EFAULT at the point of the kernel's checks where it
// would) and the fake's reply is written back as luo_ucmd_respond
// copies it. A new fd (a session, a retrieved file) is installed in the
// task only once its reply is known to be writable, since the kernel
// copies the reply before fd_install, and puts the new file, which
// releases it, when the copy faults.
//
// Every duplicate luoemu took is closed before the task is answered, as
// the kernel's fdput comes before the ioctl returns: a task that closes
// its fd right after the call is then the last closer, and the release it
// expects (the device free for the next open, a session's name free for
// the next create) has happened when its close returns.
func (e *emulator) serveIoctl(n *seccompNotif) {
	switch r, ok := e.ioctl(n); {
	case !ok:
		e.cont(n)
	case r.errno != 0:
		e.fail(n, r.errno)
	case !r.gone:
		e.reply(n, 0)
	}
}

// ioctlAnswer is how an ioctl is answered: with errno, or 0; gone when
// the task stopped waiting for it.
type ioctlAnswer struct {
	errno unix.Errno
	gone  bool
}

// ioctl serves the request of n; ok is false when it is not a fake fd's,
// and the kernel should answer it.
func (e *emulator) ioctl(n *seccompNotif) (ioctlAnswer, bool) {
	tid := int(n.Pid)
	obj, err := getFD(tid, int(int32(n.Data.Args[0])))
	if err != nil {
		return ioctlAnswer{}, false // the kernel answers EBADF
	}
	defer unix.Close(obj)
	if _, ok := fakewire.Peer(obj); !ok {
		return ioctlAnswer{}, false
	}
	req := uint32(n.Data.Args[1])
	argp := n.Data.Args[2]
	arg, usize, patched := readArg(tid, argp, req)
	var orig [fakewire.MaxReply]byte
	copy(orig[:], arg)

	attach := fakewire.NoAttach
	if luoabi.Nr(req) == liveupdate.CmdPreserveFD && len(arg) >= 8 {
		f, err := getFD(tid, int(int32(native.Uint32(arg[4:]))))
		if err != nil {
			attach = fakewire.BadAttach
		} else {
			attach = f
			defer unix.Close(f)
		}
	}
	if !e.l.valid(n.ID) {
		return ioctlAnswer{gone: true}, true // what was read may not be the task's
	}
	e.stats.ioctls.Add(1)
	r, err := fakewire.Exchange(obj, req, arg, attach)
	if err != nil {
		return ioctlAnswer{errno: toErrno(err)}, true
	}
	payload := r.Payload
	if patched && len(payload) >= 4 {
		native.PutUint32(payload, usize)
	}
	if r.NewFD < 0 {
		if writeMem(tid, argp, payload) != nil {
			return ioctlAnswer{errno: unix.EFAULT}, true
		}
		return ioctlAnswer{}, true
	}
	defer unix.Close(r.NewFD) // installed by then, or put
	if len(payload) < 8 || writeMem(tid, argp, orig[:len(payload)]) != nil {
		return ioctlAnswer{errno: unix.EFAULT}, true
	}
	tfd, err := e.l.addFD(n.ID, r.NewFD, true, false)
	if err != nil {
		if err == unix.ENOENT {
			return ioctlAnswer{gone: true}, true
		}
		return ioctlAnswer{errno: toErrno(err)}, true
	}
	native.PutUint32(payload[4:], uint32(tfd))
	if writeMem(tid, argp, payload) != nil {
		// Unmapped since the check above by another thread: the fd
		// stays installed, which the kernel would not have done.
		return ioctlAnswer{errno: unix.EFAULT}, true
	}
	return ioctlAnswer{}, true
}

// readArg reads a request's argument from task tid as the kernel sees
// it: the size field at argp and then size bytes, as far as they are
// readable. A fake is sent at most fakewire.MaxArg bytes: for a larger
// size, the rest is scanned here as check_zeroed_user scans it, and the
// argument sent says size MaxArg (patched) where that changes nothing the
// kernel would answer, or keeps a fault or a non-zero byte that does.
func readArg(tid int, argp uint64, req uint32) (arg []byte, usize uint32, patched bool) {
	var sz [4]byte
	if got := readMem(tid, argp, sz[:]); got < 4 {
		return nil, 0, false
	}
	usize = native.Uint32(sz[:])
	want := uint64(max(usize, 4))
	if want <= fakewire.MaxArg {
		buf := make([]byte, want)
		return buf[:readMem(tid, argp, buf)], usize, false
	}
	buf := make([]byte, fakewire.MaxArg)
	if got := readMem(tid, argp, buf); got < len(buf) {
		return buf[:got], usize, false // EFAULT
	}
	ksize := luoabi.MinSize(luoabi.Nr(req))
	nonzero := func(b []byte) bool {
		for _, c := range b {
			if c != 0 {
				return true
			}
		}
		return false
	}
	patch := func() {
		native.PutUint32(buf, fakewire.MaxArg)
		patched = true
	}
	if int(ksize) < len(buf) && nonzero(buf[ksize:]) {
		patch() // E2BIG before anything past it
		return buf, usize, patched
	}
	var chunk [16 << 10]byte
	for off := uint64(fakewire.MaxArg); off < uint64(usize); {
		n := min(uint64(len(chunk)), uint64(usize)-off)
		got := readMem(tid, argp+off, chunk[:n])
		if nonzero(chunk[:got]) {
			patch()
			buf[len(buf)-1] = 1 // E2BIG
			return buf, usize, patched
		}
		if got < int(n) {
			return buf, usize, false // EFAULT
		}
		off += n
	}
	patch()
	return buf, usize, patched
}

// toErrno is the errno a task sees for an error of a served call.
func toErrno(err error) unix.Errno {
	var errno unix.Errno
	switch {
	case errors.Is(err, fakewire.ErrStale):
		return unix.ESTALE
	case errors.As(err, &errno):
		return errno
	default:
		return unix.EIO
	}
}
