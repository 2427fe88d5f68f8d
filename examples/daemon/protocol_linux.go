//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// The protocol's words and limits; see the package documentation.
const (
	cmdSession = "SESSION"
	replyOK    = "OK"
	replyErr   = "ERR"
	maxLine    = 1024 // longer lines are not this protocol
)

// writeLine sends one reply line, in one write.
func writeLine(c *net.UnixConn, line string) error {
	n, err := io.WriteString(c, line)
	if err == nil && n != len(line) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(line))
	}
	return err
}

// readLine reads one reply line, without its newline, a byte at a time so
// that nothing after it (the fdpass message of an OK reply) is consumed.
// Fds sent with the line are not received: the kernel closes them.
func readLine(c *net.UnixConn) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) <= maxLine {
		n, err := c.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return string(line), nil
			}
			line = append(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			return "", errors.New("the daemon closed the connection without replying")
		}
		if err != nil {
			return "", fmt.Errorf("read the daemon's reply: %w", err)
		}
	}
	return "", errors.New("the daemon's reply is too long")
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
