//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ControlEnv names luoemu's control socket in the program tree's
// environment, so that `luoemu kexec` run anywhere in the tree finds it.
const ControlEnv = "LUOEMU_CONTROL"

// The control socket takes one line per connection, "kexec", and answers
// one line: "ok" once the live update has happened, or "error: " and why
// it did not. Only luoemu's user can connect (the socket is 0600 in a
// 0700 directory, or where -control puts it).

// serveControl answers the control socket until it is closed.
func (e *emulator) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go e.controlConn(c)
	}
}

func (e *emulator) controlConn(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	switch cmd := strings.TrimSpace(line); cmd {
	case "kexec":
		e.logf("control: kexec")
		// luoemu exits once the update has ended the tree; it waits
		// for this answer first (run waits on replying).
		e.kexecMu.Lock()
		if e.exiting {
			e.kexecMu.Unlock()
			fmt.Fprintln(c, "error: the program tree has ended; luoemu is exiting")
			return
		}
		e.replying.Add(1)
		e.kexecMu.Unlock()
		defer e.replying.Done()
		if err := e.kexec(); err != nil {
			fmt.Fprintf(c, "error: %v\n", err)
			return
		}
		fmt.Fprintln(c, "ok")
	default:
		fmt.Fprintf(c, "error: unknown command %q (luoemu's control socket takes \"kexec\")\n", cmd)
	}
}

// listenControl makes the control socket at path, readable and writable
// by luoemu's user only.
func listenControl(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// requestKexec asks the luoemu whose control socket is at path for the
// live update and waits for its answer.
func requestKexec(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("luoemu's control socket: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintln(c, "kexec"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("luoemu gave no answer (%v)", err)
	}
	line = strings.TrimSpace(line)
	if line == "ok" {
		return nil
	}
	return errors.New(strings.TrimPrefix(line, "error: "))
}
