package fdpass

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// maxFDs is how many fds Receive has room for in one read: more than a
// message carries, so that strays are received (and closed) rather than
// only counted.
const maxFDs = 4

// Send writes s's fd to c with a message naming the session (as the
// kernel names it, Session.Name) and its direction (Session.Direction), in
// one sendmsg. s stays the caller's; the peer gets its own copy of the fd,
// and the session lives until every copy is closed. s must not be closed
// while Send runs.
func Send(c *net.UnixConn, s *liveupdate.Session) error {
	name, err := s.Name()
	if err != nil {
		return fmt.Errorf("fdpass: send session: %w", err)
	}
	fd := s.Fd()
	if fd < 0 {
		return fmt.Errorf("fdpass: send session %q: %w", name, liveupdate.ErrClosed)
	}
	msg := encode(name, s.Direction())
	oob := unix.UnixRights(fd)
	n, oobn, err := c.WriteMsgUnix(msg, oob, nil)
	if err == nil && (n != len(msg) || oobn != len(oob)) {
		err = fmt.Errorf("short write: %d of %d bytes, %d of %d control bytes", n, len(msg), oobn, len(oob))
	}
	if err != nil {
		return fmt.Errorf("fdpass: send session %q: %w", name, err)
	}
	return nil
}

// Receive reads one message and its session fd from c, as Send writes
// them, and returns the session, which the caller owns. Its Direction is
// the one the sender's Session had. When the peer has closed before
// sending anything, the error matches io.EOF; when it closes mid-message,
// io.ErrUnexpectedEOF. A message that is not Send's, that comes with no fd
// or with more than one, or whose fd is not the session it names, is an
// *Error (or, for an fd that is no session at all, an error matching
// liveupdate.ErrNotSession). On error no received fd is left open.
func Receive(c *net.UnixConn) (s *liveupdate.Session, err error) {
	stream, err := isStream(c)
	if err != nil {
		return nil, fmt.Errorf("fdpass: receive session: %w", err)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	msg := make([]byte, MessageLen)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	got := 0
	for got < MessageLen {
		n, oobn, flags, _, rerr := c.ReadMsgUnix(msg[got:], oob)
		if oobn > 0 {
			// Collect first: these fds are ours to close whatever
			// else is wrong with the message.
			cmsgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			for i := range cmsgs {
				if rights, err := unix.ParseUnixRights(&cmsgs[i]); err == nil {
					fds = append(fds, rights...)
				}
			}
			if perr != nil {
				return nil, &Error{Reason: "bad control message: " + perr.Error()}
			}
		}
		got += n
		switch {
		case flags&unix.MSG_CTRUNC != 0:
			return nil, &Error{Reason: "more fds than a message carries"}
		case flags&unix.MSG_TRUNC != 0:
			return nil, &Error{Reason: "message longer than " + strconv.Itoa(MessageLen) + " bytes"}
		case rerr != nil && !errors.Is(rerr, io.EOF):
			return nil, fmt.Errorf("fdpass: receive session: %w", rerr)
		case n == 0 && got == 0:
			return nil, fmt.Errorf("fdpass: receive session: the peer closed the connection: %w", io.EOF)
		case n == 0:
			return nil, fmt.Errorf("fdpass: receive session: the peer closed the connection after %d of %d bytes: %w", got, MessageLen, io.ErrUnexpectedEOF)
		case !stream && got < MessageLen:
			return nil, &Error{Reason: "message of " + strconv.Itoa(got) + " bytes, want " + strconv.Itoa(MessageLen)}
		}
	}
	name, dir, err := decode(msg)
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		return nil, &Error{Reason: "session " + strconv.Quote(name) + " came with " + strconv.Itoa(len(fds)) + " fds, want 1"}
	}
	s, err = liveupdate.NewSessionAs(fds[0], dir)
	if err != nil {
		return nil, fmt.Errorf("fdpass: receive session %q: %w", name, err)
	}
	got2, err := s.Name()
	if err == nil && got2 != name {
		err = &Error{Reason: "the message names session " + strconv.Quote(name) + ", its fd is session " + strconv.Quote(got2)}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// isStream reports whether c is a SOCK_STREAM socket, where a message may
// arrive in pieces; datagram and seqpacket sockets deliver it whole.
func isStream(c *net.UnixConn) (bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var typ int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		return false, err
	}
	if serr != nil {
		return false, serr
	}
	return typ == unix.SOCK_STREAM, nil
}
