//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/go-luo/luo/liveupdate/conformance"
	"golang.org/x/sys/unix"
)

// The holder keeps the session fds the conformance suite hands over at the
// end of a boot (conformance.HoldEnv): the kernel drops an outgoing
// session when its last fd closes, and the test process exits before the
// kexec. A client sends messages of one byte: HoldFDs carrying fds
// (SCM_RIGHTS), then HoldEnd; the holder answers HoldKept once it has them
// all.
// It keeps them, and whatever fds in-process steps keep, until the kexec.
var held struct {
	sync.Mutex
	fds []int
}

// keep holds fd until the kexec.
func keep(fd int) {
	held.Lock()
	held.fds = append(held.fds, fd)
	held.Unlock()
}

// startHolder listens on path and serves holder clients until the kexec
// (or until the listener it returns is closed).
func startHolder(path string) (*net.UnixListener, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("holder: %w", err)
	}
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go serveHold(c)
		}
	}()
	return l, nil
}

// serveHold receives one client's fds.
func serveHold(c *net.UnixConn) {
	defer c.Close()
	var n int
	for {
		buf := make([]byte, 1)
		oob := make([]byte, unix.CmsgSpace(4*conformance.HoldMaxFDs))
		nb, noob, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || nb == 0 {
			if n > 0 {
				fmt.Fprintf(os.Stderr, "luovm holder: client left after %d fds without 'E': %v\n", n, err)
			}
			return
		}
		if noob > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:noob])
			if err == nil {
				for i := range msgs {
					fds, err := unix.ParseUnixRights(&msgs[i])
					if err != nil {
						continue
					}
					for _, fd := range fds {
						keep(fd)
						n++
					}
				}
			}
		}
		switch buf[0] {
		case conformance.HoldFDs:
		case conformance.HoldEnd:
			fmt.Printf("luovm holder: holding %d fds for the kexec\n", n)
			c.Write([]byte{conformance.HoldKept})
			return
		default:
			fmt.Fprintf(os.Stderr, "luovm holder: unexpected byte %q\n", buf[0])
			return
		}
	}
}
