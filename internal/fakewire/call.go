//go:build linux

package fakewire

import (
	"crypto/rand"
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrGone reports that the fake kernel behind an fd has stopped (its Close
// was called, or its process exited). It matches unix.EIO.
var ErrGone = gone{}

type gone struct{}

func (gone) Error() string        { return "the fake kernel behind this fd has stopped" }
func (gone) Is(target error) bool { return target == unix.EIO }

// ErrStale reports a request on an fd of a fake kernel that a live update
// (fake.Kernel.Kexec) has since replaced; a real kernel would block such a
// call forever. It matches unix.ESTALE.
var ErrStale = stale{}

type stale struct{}

func (stale) Error() string {
	return "the fd belongs to a kernel replaced by a live update (the real kernel would block forever); open the device again"
}
func (stale) Is(target error) bool { return target == unix.ESTALE }

// Call sends the request req with argument arg on fd, the user's end of a
// fake object, waits for the answer and copies the reply into arg, as the
// kernel's ioctl would. A new fd in the reply is installed close-on-exec in
// this process and its number written at arg[4:8]. It returns nil, the fake
// kernel's errno, or ErrGone.
//
// For cmdPreserve requests, the file the argument's fd field names is sent
// along, so that a fake kernel in another process sees the same file.
func Call(fd int, req uint32, arg []byte, attachArgFD bool) error {
	// Look at the argument's fd before this call opens fds of its own,
	// which could take a closed number: the kernel's fget runs against
	// the caller's fd table as it was.
	attach := NoAttach
	if attachArgFD && len(arg) >= 8 {
		attach = int(int32(native.Uint32(arg[4:])))
		if _, err := unix.FcntlInt(uintptr(attach), unix.F_GETFD, 0); attach < 0 || err != nil {
			attach = BadAttach
		}
	}
	r, err := Exchange(fd, req, arg, attach)
	copy(arg, r.Payload)
	if r.NewFD >= 0 {
		native.PutUint32(arg[4:], uint32(int32(r.NewFD)))
	}
	return err
}

// Values of Exchange's attach besides an open fd.
const (
	NoAttach  = -1 // the request carries no file
	BadAttach = -2 // the request names a file, but no open one: the fake answers EBADF where the kernel would
)

// Reply is a fake kernel's answer to one request.
type Reply struct {
	// Payload is what the kernel would copy back into the caller's
	// argument: min(size, its struct's size) bytes on success, none on
	// failure. It aliases the buffer Exchange was given.
	Payload []byte
	// NewFD is the fd a successful request made (CREATE_SESSION,
	// RETRIEVE_SESSION, RETRIEVE_FD), installed close-on-exec in this
	// process, or -1. By the time Exchange returns, the fake has closed
	// any copy of its own it made for the reply, so the caller's close
	// is the last unless the fake keeps the file itself (a retrieved
	// file, until its session is finished, as the kernel keeps it). Its
	// number is not in Payload.
	NewFD int

	lent bool // NewFD is the fake's own reference: no done message follows
}

// Exchange sends the request req with argument arg on fd, the user's end
// of a fake object, and returns the fake kernel's answer without copying
// it anywhere: it is Call for a caller that acts for another process (a
// supervisor serving a traced program's ioctls) and places the results in
// that process itself. attach is an fd of this process to send as the
// PRESERVE_FD file, NoAttach or BadAttach. The error is nil, the fake
// kernel's errno, ErrGone or ErrStale; a Reply with NewFD >= 0 comes only
// with a nil error.
//
// Each exchange makes a reply socket pair and sends one end with the
// request, closing its own copy once sent: only the fake then holds it,
// so when the fake is gone, however it went, the reply socket reads
// end-of-file. The fake shuts a reply socket down when it does not send
// the whole answer, which reads as end-of-file too. The caller's
// goroutine waits for the answer in the Go netpoller, not in a blocking
// recvmsg: a thread blocked in a system call keeps its P until the
// scheduler's monitor takes it back, and a fake kernel in the same
// process needs a P to answer.
func Exchange(fd int, req uint32, arg []byte, attach int) (Reply, error) {
	none := Reply{NewFD: -1}
	if len(arg) > MaxArg {
		return none, unix.E2BIG
	}
	flags := uint32(0)
	switch {
	case attach >= 0:
		flags |= FlagArgFD
	case attach == BadAttach:
		flags |= FlagBadFD
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return none, err
	}
	mine, theirs := pair[0], pair[1]

	// The message is built on the stack for the kernel's structs (at
	// most 72 bytes), and the rights without unix.UnixRights.
	var small [RequestHeaderLen + smallArg]byte
	var msg []byte
	if len(arg) <= smallArg {
		msg = small[:RequestHeaderLen+len(arg)]
	} else {
		msg = make([]byte, RequestHeaderLen+len(arg))
	}
	copy(msg[RequestHeaderLen:], arg)
	h := (*[RequestHeaderLen]byte)(msg)
	EncodeRequest(h, req, flags, len(arg))
	var oob Control
	n := 1
	if attach >= 0 {
		n = 2
	}
	err = sendmsg(fd, msg, PutRights(&oob, theirs, attach, n))
	if err == unix.EBADF && flags&FlagArgFD != 0 {
		// Either fd or the attached file is bad: find out which by
		// sending without the attachment, and let the fake kernel
		// answer EBADF where the kernel's checks would.
		EncodeRequest(h, req, flags&^FlagArgFD|FlagBadFD, len(arg))
		err = sendmsg(fd, msg, PutRights(&oob, theirs, -1, 1))
	}
	unix.Close(theirs)
	if err != nil {
		unix.Close(mine)
		if err == unix.EPIPE || err == unix.ECONNRESET || err == unix.ECONNREFUSED {
			return none, ErrGone
		}
		return none, err
	}
	return awaitReply(mine, arg)
}

// smallArg is the longest argument sent from a buffer on the stack; the
// kernel's structs are at most 72 bytes.
const smallArg = 240

func sendmsg(fd int, msg, oob []byte) error {
	for {
		err := unix.Sendmsg(fd, msg, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			return err
		}
	}
}

// Recvmsg is recvmsg(2) into one buffer, retried on EINTR, without the
// sender's address, which unix.Recvmsg would decode and allocate (a fake
// object's user end is bound).
//
// An end of file (no bytes, no control data) is read a second time before
// it is returned. Linux's SOCK_SEQPACKET recvmsg that does not wait finds
// the queue empty, and only then, apart, checks whether the peer has shut
// down: a message sent just before the peer closed can arrive between the
// two, and the first read then reports end of file with the message
// queued (net/unix/af_unix.c, __unix_dgram_recvmsg). Once the shutdown is
// seen, every message sent before it is queued, so the second read is
// conclusive.
func Recvmsg(fd int, p, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	n, oobn, recvflags, err = recvmsg(fd, p, oob, flags)
	if err == nil && n == 0 && oobn == 0 {
		n, oobn, recvflags, err = recvmsg(fd, p, oob, flags)
	}
	return n, oobn, recvflags, err
}

func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	var iov unix.Iovec
	iov.Base = &p[0]
	iov.SetLen(len(p))
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.SetIovlen(1)
	msg.Control = &oob[0]
	msg.SetControllen(len(oob))
	for {
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
		switch e {
		case 0:
			return int(r), int(msg.Controllen), int(msg.Flags), nil
		case unix.EINTR:
			continue
		}
		return 0, 0, 0, e
	}
}

// awaitReply reads the answer to a request from mine, a non-blocking
// reply socket that it closes, waiting for it in the netpoller. Where mine
// cannot join the netpoller (its epoll set is full), it waits in blocking
// reads instead.
func awaitReply(mine int, arg []byte) (Reply, error) {
	rr := replyReader{arg: arg, r: Reply{NewFD: -1}}
	f := os.NewFile(uintptr(mine), "luo-fake-reply")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Read(func(fd uintptr) bool { return rr.step(int(fd)) })
	}
	if err != nil {
		// rc.Read ended without the whole reply (mine is not in the
		// netpoller): step goes on from where it stopped.
		if err := unix.SetNonblock(mine, false); err != nil {
			rr.fail(err)
			return rr.r, rr.err
		}
		for !rr.step(mine) {
		}
	}
	return rr.r, rr.err
}

// fail ends the read with err, closing a new fd already received.
func (rr *replyReader) fail(err error) {
	if rr.r.NewFD >= 0 {
		unix.Close(rr.r.NewFD)
	}
	rr.r, rr.err = Reply{NewFD: -1}, err
}

// replyReader reads a reply in steps that never block: the answer, then,
// for a new fd the fake dup'ed for it, the message that says the fake has
// closed its copy.
type replyReader struct {
	arg      []byte
	r        Reply
	err      error
	waitDone bool // the answer is in; the done message is not
}

// step reads what is waiting on sock and reports whether the reply is
// complete, with rr.r and rr.err set; false means the socket had nothing
// more yet (EAGAIN).
func (rr *replyReader) step(sock int) bool {
	if !rr.waitDone {
		r, err := readReply(sock, rr.arg)
		if err == unix.EAGAIN {
			return false
		}
		rr.r, rr.err = r, err
		if err != nil || r.NewFD < 0 || r.lent {
			return true
		}
		rr.waitDone = true
	}
	// Wait until the fake has closed its copy of the new fd, so that
	// when the caller closes this one, it is the last: the release the
	// caller expects then happens. Whatever the message (or the end of
	// file, if the fake went), the new fd is the caller's.
	var done [ReplyHeaderLen]byte
	_, err := unix.Read(sock, done[:])
	for err == unix.EINTR {
		_, err = unix.Read(sock, done[:])
	}
	return err != unix.EAGAIN
}

// readReply reads the answer to a request from sock; the payload is
// copied into the start of arg, which Reply.Payload then is. It returns
// EAGAIN when no answer has come yet.
func readReply(sock int, arg []byte) (Reply, error) {
	none := Reply{NewFD: -1}
	// A reply carries at most the kernel's largest argument struct.
	var bufArr [ReplyHeaderLen + MaxReply]byte
	var oobBuf Control
	buf, oob := bufArr[:], oobBuf.Bytes()
	n, oobn, _, err := Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return none, err
	}
	var got [MaxFDs]int
	ngot, ok := ParseRights(oob[:oobn], &got)
	if !ok {
		closeAll(got[:ngot])
		return none, ErrMalformed
	}
	if n == 0 {
		closeAll(got[:ngot])
		return none, ErrGone
	}
	errno, flags, payload, err := DecodeReply(buf[:n])
	if err != nil {
		closeAll(got[:ngot])
		return none, err
	}
	if flags&ReplyStale != 0 {
		closeAll(got[:ngot])
		return none, ErrStale
	}
	r := Reply{Payload: arg[:copy(arg, payload)], NewFD: -1}
	if flags&ReplyNewFD != 0 {
		if ngot != 1 || len(arg) < 8 || errno != 0 {
			closeAll(got[:ngot])
			return none, ErrMalformed
		}
		r.NewFD = got[0]
		// A lent fd is the fake's own reference, which it keeps:
		// no done message follows.
		r.lent = flags&ReplyLent != 0
	} else if ngot > 0 {
		closeAll(got[:ngot])
		return none, ErrMalformed
	}
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// DialTimeout bounds how long Dial waits for a fake kernel: for room in
// its socket's backlog, then for the open's answer. A fake that answers
// does so at once, or after restoring the sessions handed over to it on
// its first open.
const DialTimeout = 30 * time.Second

// Dial connects to a fake kernel's device socket at path (see
// fake.Kernel.Listen) and returns the connected fd, the user's end of a
// fake device, bound (as a socket pair's user end is) to a fake device's
// abstract address, so that Peer recognises it wherever it is passed. The
// fake kernel answers the connection with the open's errno: EBUSY while
// another opener holds the device. A fake that has not answered within
// DialTimeout (its process stopped, or not serving the socket) fails the
// dial with an error matching unix.ETIMEDOUT.
func Dial(path string) (int, error) { return dial(path, DialTimeout) }

func dial(path string, timeout time.Duration) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := bindDevice(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	deadline := time.Now().Add(timeout)
	// A unix connect waits for backlog room for SO_SNDTIMEO, then fails
	// with EAGAIN; a read waits for SO_RCVTIMEO. A signal ends either
	// wait early (EINTR); it resumes with what is left of the time.
	for {
		err = setTimeout(fd, unix.SO_SNDTIMEO, deadline)
		if err == nil {
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		}
		if err != unix.EINTR {
			break
		}
	}
	var buf [ReplyHeaderLen]byte
	n := 0
	for err == nil {
		err = setTimeout(fd, unix.SO_RCVTIMEO, deadline)
		if err == nil {
			n, err = unix.Read(fd, buf[:])
		}
		if err != unix.EINTR {
			break
		}
		err = nil
	}
	if err == unix.EAGAIN || err == errDeadline {
		err = &dialTimeoutError{timeout}
	}
	if err == nil && n < ReplyHeaderLen {
		err = ErrGone
	}
	if err == nil {
		if errno, _, _, _ := DecodeReply(buf[:n]); errno != 0 {
			err = errno
		}
	}
	if err == nil {
		// The fd is the device's now: its requests wait as long as the
		// kernel's ioctls do.
		err = clearTimeouts(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// bindDevice binds fd, an unbound AF_UNIX socket, to a fresh fake
// device address (a random id; another id when that one is taken).
func bindDevice(fd int) error {
	var err error
	for range 8 {
		a := Addr{ID: randomID()}
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + a.String()})
		if err != unix.EADDRINUSE {
			return err
		}
	}
	return err
}

// randomID returns an object id from crypto/rand (whose Read does not
// fail: Go 1.24 and later).
func randomID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return native.Uint64(b[:])
}

// errDeadline says that the dial's time is up.
var errDeadline = errors.New("fakewire: dial deadline passed")

// setTimeout sets the socket timeout opt to the time left until deadline.
func setTimeout(fd, opt int, deadline time.Time) error {
	left := time.Until(deadline)
	if left <= 0 {
		return errDeadline
	}
	tv := unix.NsecToTimeval(max(left, time.Microsecond).Nanoseconds())
	return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv)
}

func clearTimeouts(fd int) error {
	var zero unix.Timeval
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &zero); err != nil {
		return err
	}
	return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &zero)
}

// dialTimeoutError is Dial's error when the fake kernel did not answer.
type dialTimeoutError struct{ after time.Duration }

func (e *dialTimeoutError) Error() string {
	return "no answer from the fake kernel within " + e.after.String() +
		" (its process is stopped, or no longer serves the socket)"
}

func (e *dialTimeoutError) Unwrap() error { return unix.ETIMEDOUT }

// Timeout reports true, as net's timeout errors do.
func (e *dialTimeoutError) Timeout() bool { return true }
