//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// The protocol's words and limits; see the package documentation.
const (
	cmdSession  = "SESSION"
	replyOK     = "OK"
	replyErr    = "ERR"
	kindOut     = "outgoing"
	kindIn      = "incoming"
	maxLine     = 1024 // longer lines are not this protocol
	maxReplyFDs = 4    // room for more fds than a reply carries, to close strays
)

// writeReply sends one reply line, with fd attached as SCM_RIGHTS unless it
// is negative, in one sendmsg.
func writeReply(c *net.UnixConn, line string, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	n, oobn, err := c.WriteMsgUnix([]byte(line), oob, nil)
	if err == nil && (n != len(line) || oobn != len(oob)) {
		err = fmt.Errorf("short write (%d of %d bytes, %d of %d control bytes)", n, len(line), oobn, len(oob))
	}
	return err
}

// readReply reads one reply line and the fds that came with it. The fds are
// the caller's, and close-on-exec (the net package receives with
// MSG_CMSG_CLOEXEC). On error none are left open.
func readReply(c *net.UnixConn) (line string, fds []int, err error) {
	buf := make([]byte, maxLine)
	oob := make([]byte, unix.CmsgSpace(maxReplyFDs*4))
	var data []byte
	defer func() {
		if err != nil {
			closeAll(fds)
			fds = nil
		}
	}()
	for {
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return "", fds, fmt.Errorf("bad control message from the daemon: %w", perr)
			}
			for i := range msgs {
				if rights, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return "", fds, errors.New("the daemon sent more fds than a reply carries")
		}
		data = append(data, buf[:n]...)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return string(data[:i]), fds, nil
		}
		if err != nil {
			return "", fds, fmt.Errorf("read the daemon's reply: %w", err)
		}
		if n == 0 {
			return "", fds, errors.New("the daemon closed the connection without replying")
		}
		if len(data) > maxLine {
			return "", fds, errors.New("the daemon's reply is too long")
		}
	}
}

// closeAll closes fds.
func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// peerPID returns the pid of the process at the other end of c, or 0.
func peerPID(c *net.UnixConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return 0
	}
	return int(cred.Pid)
}
