//go:build linux

package fake

import (
	"github.com/go-luo/luo/internal/luoabi"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// sessionIoctl is luo_session_ioctl: the kernel's checks in its order
// (command range, size field, exact request, direction, min_size, trailing
// bytes), then the command under the serialize lock.
func (b *boot) sessionIoctl(o *object, r *request) {
	if b.dead.Load() {
		r.stale = true
		return
	}
	s := o.sess
	nops := liveupdate.Command(4)
	if !b.cfg.b.getName {
		nops = 3 // no GET_NAME
	}
	nr := luoabi.Nr(r.req)
	if nr < luoabi.SessionBase || nr-luoabi.SessionBase >= nops {
		r.errno = unix.EINVAL
		return
	}
	size, err := luoabi.ReadSize(r.arg)
	if err != nil {
		r.errno = unix.EFAULT
		return
	}
	c := nr
	if r.req != c.Request() {
		r.errno = unix.ENOTTY
		return
	}
	if b.cfg.b.directionCheck && !directionOK(c, s) {
		r.errno = unix.EINVAL
		return
	}
	ksize, minSize := c.Size(), luoabi.MinSize(c)
	if luoabi.CheckSize(size, minSize) != nil {
		r.errno = unix.EINVAL
		return
	}
	var kbuf [liveupdate.SizeofGetName]byte // the largest argument
	if err := luoabi.CopyStructFromUser(kbuf[:ksize], r.arg, size); err != nil {
		r.errno = err.(unix.Errno)
		return
	}
	b.serialize.RLock()
	defer b.serialize.RUnlock()
	if b.dead.Load() {
		r.stale = true
		return
	}
	switch c {
	case liveupdate.CmdPreserveFD:
		var a liveupdate.PreserveFDArgs
		a.Decode(kbuf[:])
		r.errno = b.preserve(s, r, a.Token)
		if r.errno == 0 {
			a.Encode(kbuf[:])
			r.reply = kbuf[:luoabi.ReplyLen(size, liveupdate.SizeofPreserveFD)]
		}
	case liveupdate.CmdRetrieveFD:
		var a liveupdate.RetrieveFDArgs
		a.Decode(kbuf[:])
		r.newFD, r.lent, r.errno = b.retrieve(s, a.Token)
		if r.errno == 0 {
			a.FD = -1
			a.Encode(kbuf[:])
			r.reply = kbuf[:luoabi.ReplyLen(size, liveupdate.SizeofRetrieveFD)]
		}
	case liveupdate.CmdFinish:
		var a liveupdate.FinishArgs
		a.Decode(kbuf[:])
		if a.Reserved != 0 && b.cfg.b.finishReserved {
			// luo_session_finish, before anything is finished.
			r.errno = unix.EINVAL
			return
		}
		s.mu.Lock()
		r.errno = b.finishFiles(s)
		s.mu.Unlock()
		if r.errno == 0 {
			r.reply = kbuf[:luoabi.ReplyLen(size, liveupdate.SizeofFinish)]
		}
	case liveupdate.CmdGetName:
		var a liveupdate.GetNameArgs
		a.Decode(kbuf[:])
		if a.Reserved != 0 {
			r.errno = unix.EINVAL
			return
		}
		// strscpy: the name and its NUL; bytes after it stay as the
		// caller sent them.
		n := copy(a.Name[:liveupdate.MaxNameLen], s.name)
		a.Name[n] = 0
		a.Encode(kbuf[:])
		r.reply = kbuf[:luoabi.ReplyLen(size, liveupdate.SizeofGetName)]
	}
}

// directionOK is luo_ioctl_type_valid: retrieved is set only on incoming
// sessions.
func directionOK(c liveupdate.Command, s *session) bool {
	switch luoabi.Direction(c) {
	case liveupdate.Outgoing:
		return !s.retrieved.Load()
	case liveupdate.Incoming:
		return s.retrieved.Load()
	}
	return true
}
