//go:build linux

package fake

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/go-luo/luo/internal/fakewire"
	"golang.org/x/sys/unix"
)

// An object is the fake kernel's end of a device or session fd: the
// struct file of the kernel. The user holds the other end of a socket pair;
// requests arrive as messages on it, and when every copy of the user's end
// is closed the socket hangs up, which is the file's release.
//
// Like a struct file, an object has a reference count: one for the open
// socket and one for each request in progress (the kernel's fdget). The
// release runs when the count drops to zero, so it never overlaps a
// request on the same file.
type object struct {
	k    *Kernel
	boot *boot
	fd   int      // our end, non-blocking, in k's hang-up epoll set
	f    *os.File // fd in the Go netpoller; the object's goroutine closes it
	rc   syscall.RawConn

	sess *session // nil for the device
	dev  bool

	readMu    sync.Mutex // one reader of the socket at a time
	hup       bool       // the socket hung up; guarded by readMu
	inflight  int        // requests read and not yet answered (at most MaxInFlight); guarded by readMu
	throttled bool       // a message may wait unread for want of a slot; guarded by readMu

	refMu sync.Mutex
	refs  int
}

// newObject makes a socket pair for a device or session, binds the user's
// end to an address naming it, registers our end and returns the user's
// end, which the caller sends to the user and then closes.
func (k *Kernel) newObject(b *boot, sess *session) (*object, int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, err
	}
	user, ours := pair[0], pair[1]
	// The fake sends nothing on the object's socket (replies go on the
	// reply sockets): a read(2) of the user's end then ends at once, with
	// no bytes, where the kernel's file, which has no read operation,
	// answers EINVAL. Without this it would block for ever.
	if err := unix.Shutdown(ours, unix.SHUT_WR); err != nil {
		unix.Close(user)
		unix.Close(ours)
		return nil, -1, err
	}
	addr := fakewire.Addr{ID: randomID(), Session: sess != nil}
	if sess != nil {
		addr.Name = sess.name
	}
	if err := unix.Bind(user, &unix.SockaddrUnix{Name: "@" + addr.String()}); err != nil {
		unix.Close(user)
		unix.Close(ours)
		return nil, -1, err
	}
	o, err := k.adopt(b, sess, ours)
	if err != nil {
		unix.Close(user)
		unix.Close(ours)
		return nil, -1, err
	}
	return o, user, nil
}

// adopt makes ours, the fake's end of a connected socket, the object of a
// device (sess nil) or session, served by a goroutine of its own.
func (k *Kernel) adopt(b *boot, sess *session, ours int) (*object, error) {
	if err := unix.SetNonblock(ours, true); err != nil {
		return nil, err
	}
	// Credentials on every message tell a message of no bytes from the
	// end of file (recvMessage).
	if err := unix.SetsockoptInt(ours, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, err
	}
	o := &object{k: k, boot: b, fd: ours, sess: sess, dev: sess == nil, refs: 1}
	if err := k.register(o); err != nil {
		return nil, err
	}
	go o.loop()
	return o, nil
}

// loop serves the object: it waits in the netpoller for messages (no
// thread is held while it waits) and pumps them, until the socket hangs up
// or the kernel closes; then it closes the fd.
func (o *object) loop() {
	defer o.k.loops.Done()
	o.rc.Read(func(uintptr) bool { return o.pump() })
	o.f.Close()
}

func randomID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("fake: crypto/rand failed: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// get takes a reference for a request in progress.
func (o *object) get() {
	o.refMu.Lock()
	o.refs++
	o.refMu.Unlock()
}

// put drops a reference; the last one releases the object.
func (o *object) put() {
	o.refMu.Lock()
	o.refs--
	last := o.refs == 0
	o.refMu.Unlock()
	if last {
		o.release()
	}
}

// release is the file's release: it unregisters and closes our end and
// releases the device or session, as the kernel's release handlers do.
//
// The device or session is released before the fd leaves the epoll set:
// until then, reap finds the object and waits on readMu for the release
// that pump is running, so it never answers before a release completes.
func (o *object) release() {
	if o.dev {
		o.boot.releaseDevice(o)
	} else {
		o.boot.releaseSession(o.sess)
	}
	o.k.unregister(o) // the object's goroutine closes the fd
}

// pump reads the messages waiting on the socket and starts a request for
// each, up to MaxInFlight in progress; on hang-up it drops the socket's
// reference. It never blocks, and reports whether the socket has hung up.
func (o *object) pump() (hup bool) {
	o.readMu.Lock()
	defer o.readMu.Unlock()
	return o.pumpLocked()
}

func (o *object) pumpLocked() (hup bool) {
	if o.hup {
		return true
	}
	for {
		if o.inflight == MaxInFlight {
			// The rest waits in the socket; done reads on.
			o.throttled = true
			return false
		}
		buf := o.k.getBuf()
		msg, fds, err := recvMessage(o.fd, buf)
		if err != nil || msg == nil {
			o.k.msgBufs.Put(buf)
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == errHangUp:
			// Every copy of the user's end is closed: the file's
			// release, and nothing else is.
			o.hup = true
			o.put()
			// The object's goroutine may be waiting for a readiness
			// that another pump has used up: wake it, to close.
			o.f.SetReadDeadline(time.Unix(1, 0))
			return true
		case err == unix.ECONNRESET:
			// The user's end was closed with a message unread (a
			// Listen client gone before the open's answer): the
			// error is reported once; the end of file follows.
			continue
		case err != nil:
			// Not a hang-up, and no message to drop: wait for the
			// next one.
			return false
		case msg == nil:
			continue // dropped by recvMessage
		case fds.n == 0:
			o.k.msgBufs.Put(buf)
			continue // no reply socket: not a request (a write(2)); drop it
		}
		o.inflight++
		o.get()
		o.k.serving.Add(1)
		go o.serve(buf, msg, fds)
	}
}

// done ends a request: it frees its slot and, if a message may be waiting
// for one, reads on.
func (o *object) done() {
	o.readMu.Lock()
	defer o.readMu.Unlock()
	o.inflight--
	if o.throttled {
		o.throttled = false
		o.pumpLocked()
	}
}

// maxMessage is the longest request message: a header and the largest
// argument Call sends. A longer message is read no further than this,
// and dropped.
const maxMessage = fakewire.RequestHeaderLen + fakewire.MaxArg

// msgBuf holds one request message as read.
type msgBuf [maxMessage]byte

// getBuf returns a message buffer from the kernel's pool: a request is
// read in one recvmsg, into room for the longest, which is too big to
// make for each.
func (k *Kernel) getBuf() *msgBuf {
	if b, ok := k.msgBufs.Get().(*msgBuf); ok {
		return b
	}
	return new(msgBuf)
}

// rights is the fds a message brought: a request's reply socket first,
// then the file to preserve.
type rights struct {
	fd [fakewire.MaxFDs]int
	n  int
}

func (r *rights) all() []int { return r.fd[:r.n] }

// drop closes a message's fds unanswered. A reply socket comes first;
// it is shut down before it is closed, so that a client waiting on it,
// which may hold another copy of its peer's end to use again, reads
// end-of-file and knows no answer comes.
func (r *rights) drop() {
	if r.n > 0 {
		unix.Shutdown(r.fd[0], unix.SHUT_RDWR)
	}
	closeFDs(r.all())
	r.n = 0
}

// errHangUp is recvMessage's end of file.
var errHangUp = errors.New("fake: hang-up")

// recvMessage reads one message, in one recvmsg, into buf and the fds
// attached to it, or returns errHangUp at end of file (which
// fakewire.Recvmsg reads twice, as a message sent just before the last
// close can follow a first end of file).
//
// On SOCK_SEQPACKET a message of no bytes (write(fd, buf, 0)) reads as
// zero bytes, like the end of file. Our end has SO_PASSCRED set before any
// message can reach it, so the kernel attaches the sender's credentials to
// every message (net/unix/af_unix.c: unix_maybe_add_creds, then
// __scm_recv_common): a read that returns neither bytes nor control data
// is the end of file and nothing else. A message that is not a request is
// returned with its fds for serve to drop; one longer than maxMessage or
// with unreadable control data is dropped here (msg nil, err nil).
func recvMessage(fd int, buf *msgBuf) (msg []byte, fds rights, err error) {
	var control fakewire.Control
	oob := control.Bytes()
	n, oobn, flags, err := fakewire.Recvmsg(fd, buf[:], oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fds, err
	}
	if n == 0 && oobn == 0 {
		return nil, fds, errHangUp
	}
	var ok bool
	fds.n, ok = fakewire.ParseRights(oob[:oobn], &fds.fd)
	if !ok || flags&unix.MSG_TRUNC != 0 {
		fds.drop()
		return nil, fds, nil
	}
	return buf[:n], fds, nil
}

// serve answers one request message and sends the reply on the reply
// socket that came with it. It drops the request's reference to o before
// replying, as the kernel's ioctl puts the file before it returns, so a
// caller that closes its fd on seeing the answer finds it released.
//
// Nothing here waits for the client: the reply is sent without blocking,
// and a reply socket that cannot take it at once (a datagram socket whose
// peer's queue is full, a full stream socket) loses it, the new fd in it
// included, whose object is then released. A reply socket that did not
// take the whole answer is shut down, so that a client waiting on it reads
// end-of-file. Kernel.Close waits for the request and for the close of an
// AF_UNIX reply socket, but not for the close of any other reply fd, whose
// close(2) the client can make block (a TCP socket lingering with unsent
// data).
//
// The other fds a request brings (the file to preserve, any extra) are
// closed before the reply, so that the fake holds no copy of a user's fd
// once the user has the answer. A file whose own close(2) blocks (a TCP
// socket lingering, a FUSE file whose daemon does not answer the flush)
// holds its request there, and Close with it: the one wait on a client
// left, and only for files no honest request carries.
func (o *object) serve(buf *msgBuf, msg []byte, fds rights) {
	replyFD := fds.fd[0]
	if !o.answer(msg, replyFD, fds.fd[1:fds.n]) {
		unix.Shutdown(replyFD, unix.SHUT_RDWR)
	}
	o.k.msgBufs.Put(buf)
	if unixSocket(replyFD) {
		// The reply socket our client sends: its close(2) never
		// blocks, so Kernel.Close waits for it too, and a test that
		// counts its fds after Close finds none of the fake's.
		unix.Close(replyFD)
		o.k.serving.Done()
	} else {
		o.k.serving.Done()
		unix.Close(replyFD)
	}
	o.done()
}

// unixSocket tells whether fd is an AF_UNIX socket, whose close(2) does
// not block (no linger, no flush).
func unixSocket(fd int) bool {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && d == unix.AF_UNIX
}

// answer runs the request and sends its reply on replyFD; it reports
// whether the whole reply was sent.
func (o *object) answer(msg []byte, replyFD int, extra []int) (sent bool) {
	req, flags, arg, err := fakewire.DecodeRequest(msg)
	if err != nil {
		closeFDs(extra)
		o.put()
		return false
	}
	r := &request{req: req, flags: flags, arg: arg, argFD: -1, newFD: -1}
	if flags&fakewire.FlagArgFD != 0 && len(extra) > 0 {
		r.argFD, extra = extra[0], extra[1:]
	}
	closeFDs(extra)
	o.k.reap()
	if o.dev {
		o.boot.deviceIoctl(o, r)
	} else {
		o.boot.sessionIoctl(o, r)
	}
	if r.argFD >= 0 && !r.argFDKept {
		unix.Close(r.argFD)
	}
	o.put()
	rflags := uint32(0)
	var oob fakewire.Control
	var rights []byte
	if r.stale {
		rflags |= fakewire.ReplyStale
	}
	if r.newFD >= 0 {
		rflags |= fakewire.ReplyNewFD
		if r.lent != nil {
			rflags |= fakewire.ReplyLent
		}
		rights = fakewire.PutRights(&oob, r.newFD, -1, 1)
	}
	var outArr [fakewire.ReplyHeaderLen + fakewire.MaxReply]byte
	out := outArr[:fakewire.ReplyHeaderLen]
	fakewire.EncodeReply((*[fakewire.ReplyHeaderLen]byte)(out), r.errno, rflags)
	out = append(out, r.reply...)
	err = sendReply(replyFD, out, rights)
	if r.lent != nil {
		// The fake keeps its reference (the kernel's luo_file holds
		// the file until finish), so the caller's fd is never the
		// last: nothing to close, no second message.
		r.lent.unlend()
	} else if r.newFD >= 0 {
		// Sent, our copy goes; not sent (the caller is gone, or its
		// reply socket is full), the object behind it is released, as
		// when the kernel's reply copy fails and it puts the new file.
		// Then tell the caller the fd it holds is the only one (if
		// this is lost too, the shutdown of the reply socket says it).
		unix.Close(r.newFD)
		if err == nil {
			var h [fakewire.ReplyHeaderLen]byte
			fakewire.EncodeReply(&h, 0, fakewire.ReplyDone)
			err = sendReply(replyFD, h[:], nil)
		}
	}
	return err == nil
}

// sendReply sends a reply without ever blocking.
func sendReply(fd int, msg, rights []byte) error {
	for {
		err := unix.Sendmsg(fd, msg, rights, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			return err
		}
	}
}

// request is one ioctl in progress.
type request struct {
	req       uint32
	flags     uint32
	arg       []byte // the user's argument bytes, as far as readable
	argFD     int    // the file named by the fd field (PRESERVE_FD), or -1
	argFDKept bool   // argFD now belongs to a preserved file

	errno unix.Errno
	reply []byte // bytes to copy back into the user's argument
	newFD int    // fd to install in the caller, or -1
	lent  *file  // newFD is this file's own reference, lent: not closed after the reply
	stale bool
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
