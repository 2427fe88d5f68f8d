//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fdpass"
	"golang.org/x/sys/unix"
)

// The client's memfd: its token in the session, and the record it holds.
const (
	clientToken = 1
	recordMagic = "luo-daemon-example v1"
	maxRecord   = 64 << 10
)

// client is the daemon's client: it asks the daemon at sock for the session
// name and, if the session is outgoing, preserves its state in a memfd; if
// it is incoming (the daemon retrieved it after the update), it retrieves
// the memfd, checks it and finishes the session. It narrates on out.
func client(sock, name string, out io.Writer) error {
	fmt.Fprintf(out, "client: pid %d asks the daemon at %s for session %q\n", os.Getpid(), sock, name)
	s, err := askSession(sock, name)
	if err != nil {
		return err
	}
	defer s.Close()
	// The session's name, from the kernel: the daemon handed over the
	// right one.
	got, err := s.Name()
	if err != nil {
		return err
	}
	if got != name {
		return fmt.Errorf("the daemon handed over session %q, not %q", got, name)
	}
	fmt.Fprintf(out, "client: received %s session %q (fd %d)\n", s.Direction(), got, s.Fd())

	if s.Direction() == liveupdate.Outgoing {
		msg := fmt.Sprintf("hello from client pid %d, written before the live update", os.Getpid())
		if err := preserveRecord(s, msg); errors.Is(err, unix.EEXIST) {
			fmt.Fprintf(out, "client: token %d is preserved already (by an earlier run); nothing to do\n", clientToken)
			return s.Close()
		} else if err != nil {
			return err
		}
		fmt.Fprintf(out, "client: preserved a memfd under token %d: %q\n", clientToken, msg)
		fmt.Fprintln(out, "client: done; the daemon holds the session until the update")
		return s.Close()
	}

	msg, err := retrieveRecord(s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "client: retrieved token %d, checksum ok: %q\n", clientToken, msg)
	if err := s.Finish(); err != nil {
		return err
	}
	fmt.Fprintf(out, "client: finished session %q\n", name)
	fmt.Fprintf(out, "client: verified: %s\n", msg)
	return s.Close()
}

// askSession asks the daemon at sock for the session name and receives it
// with fdpass: its Direction says whether it is outgoing or incoming.
func askSession(sock, name string) (*liveupdate.Session, error) {
	if err := liveupdate.ValidateName(name); err != nil {
		return nil, fmt.Errorf("session name %q: %w", name, err)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("connect to the daemon: %w; is it running, and is %s its -socket?", err, sock)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%s %s\n", cmdSession, name); err != nil {
		return nil, fmt.Errorf("ask the daemon: %w", err)
	}
	line, err := readLine(c)
	if err != nil {
		return nil, err
	}
	verb, arg, _ := strings.Cut(line, " ")
	switch {
	case verb == replyErr:
		return nil, fmt.Errorf("the daemon refused session %q: %s", name, arg)
	case line != replyOK:
		return nil, fmt.Errorf("the daemon replied %q; this client speaks %q", line, replyOK)
	}
	s, err := fdpass.Receive(c)
	if err != nil {
		return nil, fmt.Errorf("the session the daemon sent: %w", err)
	}
	if d := s.Direction(); d != liveupdate.Outgoing && d != liveupdate.Incoming {
		s.Close()
		return nil, fmt.Errorf("the daemon sent session %q without saying whether it is outgoing or incoming", name)
	}
	return s, nil
}

// record returns the memfd contents for msg: a magic line, msg, and its
// SHA-256, so that the next run can tell it is intact.
func record(msg string) []byte {
	sum := sha256.Sum256([]byte(msg))
	return []byte(recordMagic + "\n" + msg + "\nsha256 " + hex.EncodeToString(sum[:]) + "\n")
}

// preserveRecord writes the record of msg into a new memfd and preserves it
// in s under clientToken.
func preserveRecord(s *liveupdate.Session, msg string) error {
	fd, err := unix.MemfdCreate("client-state", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "client-state")
	defer f.Close()
	if _, err := f.Write(record(msg)); err != nil {
		return err
	}
	return s.Preserve(f, clientToken)
}

// retrieveRecord retrieves the memfd of clientToken from s and returns the
// message in it, after checking its record.
func retrieveRecord(s *liveupdate.Session) (string, error) {
	f, err := s.Retrieve(clientToken)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, 0, maxRecord))
	if err != nil {
		return "", err
	}
	lines := strings.SplitN(string(data), "\n", 4)
	if len(lines) != 4 || lines[0] != recordMagic || lines[3] != "" {
		return "", fmt.Errorf("token %d holds %q, not a record this client wrote", clientToken, data)
	}
	if want := record(lines[1]); !bytes.Equal(data, want) {
		return "", fmt.Errorf("token %d: checksum mismatch: the memfd holds %q, its checksum says otherwise", clientToken, data)
	}
	return lines[1], nil
}
