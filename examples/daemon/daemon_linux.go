//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fdpass"
)

// daemon owns a LUO device and hands session fds to clients over a unix
// socket. It keeps the outgoing sessions it created open until the update
// (or until close); an incoming session it hands over once and then closes,
// so that the client owns it.
type daemon struct {
	out io.Writer // narration; safe for concurrent use

	mu       sync.Mutex
	dev      *liveupdate.Device
	sessions map[string]*liveupdate.Session // outgoing sessions held for clients

	l     *net.UnixListener
	conns map[*net.UnixConn]bool
	wg    sync.WaitGroup
}

// newDaemon returns a daemon that owns dev, which it closes on close.
func newDaemon(dev *liveupdate.Device, out io.Writer) *daemon {
	return &daemon{out: out, dev: dev, sessions: map[string]*liveupdate.Session{}, conns: map[*net.UnixConn]bool{}}
}

// listen listens on a unix socket at path, readable and writable by this
// user only. A stale socket left by a daemon that died is removed; a live
// one is an error.
func listen(path string) (*net.UnixListener, error) {
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	l, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		if c, derr := net.DialUnix("unix", nil, addr); derr == nil {
			c.Close()
			return nil, fmt.Errorf("a daemon is already listening on %s: stop it first, or use another -socket", path)
		}
		os.Remove(path) // stale
		l, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// start serves clients on l, each on its own goroutine, until close.
func (d *daemon) start(l *net.UnixListener) {
	d.mu.Lock()
	d.l = l
	d.wg.Add(1)
	d.mu.Unlock()
	go d.accept(l)
}

// accept accepts clients on l until it is closed.
func (d *daemon) accept(l *net.UnixListener) {
	defer d.wg.Done()
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return // closed
		}
		d.mu.Lock()
		if d.conns == nil { // closing
			d.mu.Unlock()
			c.Close()
			return
		}
		d.conns[c] = true
		d.wg.Add(1)
		d.mu.Unlock()
		go d.handle(c)
	}
}

// handle answers one client's requests until it hangs up.
func (d *daemon) handle(c *net.UnixConn) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		c.Close()
	}()
	pid := peerPID(c)
	r := bufio.NewReaderSize(c, maxLine)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			writeLine(c, replyErr+" request line too long\n")
			return
		}
		if err != nil {
			return // hung up
		}
		verb, arg, _ := strings.Cut(strings.TrimSuffix(string(line), "\n"), " ")
		if verb != cmdSession {
			writeLine(c, fmt.Sprintf("%s unknown request %q: send %q\n", replyErr, verb, cmdSession+" NAME"))
			continue
		}
		fmt.Fprintf(d.out, "daemon: client pid %d asks for session %q\n", pid, arg)
		if err := d.handOver(c, arg); err != nil {
			fmt.Fprintf(d.out, "daemon: %v\n", err)
			if werr := writeLine(c, replyErr+" "+oneLine(err.Error())+"\n"); werr != nil {
				return
			}
		}
	}
}

// handOver finds or makes the session name and sends its fd over c. An
// error means that nothing was sent; it is the answer for the client.
func (d *daemon) handOver(c *net.UnixConn, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dev == nil {
		return errors.New("the daemon is stopping")
	}
	if err := liveupdate.ValidateName(name); err != nil {
		return fmt.Errorf("session name %q: %w", name, err)
	}
	if s, ok := d.sessions[name]; ok {
		fmt.Fprintf(d.out, "daemon: handing over outgoing session %q again\n", name)
		return d.send(c, s)
	}
	s, err := d.dev.RetrieveSession(name)
	if err == nil {
		fmt.Fprintf(d.out, "daemon: retrieved session %q from the previous kernel; handing it over\n", name)
		err := d.send(c, s)
		if err != nil {
			// Not sent: finish it rather than leak it; the client
			// failed anyway.
			s.Close()
			return err
		}
		// Sent: the client owns the session now.
		s.Close()
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s, err = d.dev.CreateSession(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "daemon: created outgoing session %q; handing it over and keeping it until the update\n", name)
	if err := d.send(c, s); err != nil {
		s.Close()
		return err
	}
	d.sessions[name] = s
	return nil
}

// send sends an OK reply and then s with fdpass, which carries its name
// and direction. Its error is the connection's; the client is gone.
func (d *daemon) send(c *net.UnixConn, s *liveupdate.Session) error {
	if err := writeLine(c, replyOK+"\n"); err != nil {
		return fmt.Errorf("send session %q: %w", s, err)
	}
	return fdpass.Send(c, s)
}

// held returns the names of the outgoing sessions the daemon holds.
func (d *daemon) held() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for name := range d.sessions {
		names = append(names, name)
	}
	return names
}

// close stops the daemon: it stops listening, hangs up on clients, waits
// for their handlers and closes its sessions and the device. Before a
// kexec, closing the outgoing sessions drops them; after one, it closes the
// old kernel's fds.
func (d *daemon) close() {
	d.mu.Lock()
	if d.l != nil {
		d.l.Close()
	}
	for c := range d.conns {
		c.Close()
	}
	d.conns = nil
	d.mu.Unlock()
	d.wg.Wait()

	d.mu.Lock()
	defer d.mu.Unlock()
	for name, s := range d.sessions {
		s.Close()
		delete(d.sessions, name)
	}
	if d.dev != nil {
		d.dev.Close()
		d.dev = nil
	}
}

// oneLine makes s fit on one protocol line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
