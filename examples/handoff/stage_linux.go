//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// The session and token the state travels in.
const (
	sessionName = "handoff"
	stateToken  = 1
	memfdName   = "handoff-state"
	maxState    = 1 << 20 // more than this in the memfd is not our state
)

// state is what the agent carries across the live update.
type state struct {
	Counter int    `json:"counter"`
	Message string `json:"message"`
}

// initial is the state stage 1 preserves and stage 2 expects back.
var initial = state{Counter: 41, Message: "hello from the previous kernel"}

// afterPreserve, when set (by tests), is called with the state memfd right
// after stage 1 preserved it, so that a test can change the preserved
// contents as a stray write would.
var afterPreserve func(f *os.File)

// stage1 is the agent before the live update: it creates the session
// "handoff", writes st into a memfd and preserves it under token 1. It
// returns the session, which the caller must keep open until the kexec:
// closing it drops the session and its memfd.
func stage1(dev *liveupdate.Device, st state, out io.Writer) (*liveupdate.Session, error) {
	s, err := dev.CreateSession(sessionName)
	if err != nil {
		return nil, fmt.Errorf("stage 1: %w", err)
	}
	fmt.Fprintf(out, "stage 1: created session %q\n", sessionName)
	if err := preserveState(s, st, out); err != nil {
		s.Close()
		return nil, fmt.Errorf("stage 1: %w", err)
	}
	fmt.Fprintf(out, "stage 1: preserved it under token %d; the session must stay open until the kexec\n", stateToken)
	return s, nil
}

// preserveState writes st into a new memfd and preserves it in s. The memfd
// is closed again: the kernel holds its own reference.
func preserveState(s *liveupdate.Session, st state, out io.Writer) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate(memfdName, unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), memfdName)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write the state into memfd %q: %w", memfdName, err)
	}
	fmt.Fprintf(out, "stage 1: wrote the state into memfd %q (%d bytes): %s\n", memfdName, len(data), data)
	if err := s.Preserve(f, stateToken); err != nil {
		return err
	}
	if afterPreserve != nil {
		afterPreserve(f)
	}
	return nil
}

// stage2 is the agent after the live update: it retrieves the session
// "handoff" and its memfd, checks that the state is want, prints it with the
// counter incremented, and finishes the session. The session is closed
// whatever happens; closing an incoming session finishes it.
func stage2(dev *liveupdate.Device, want state, out io.Writer) (state, error) {
	s, err := dev.RetrieveSession(sessionName)
	if errors.Is(err, os.ErrNotExist) {
		return state{}, fmt.Errorf("stage 2: %w; run stage 1 (-stage 1) before the live update and keep its session open until the kexec", err)
	}
	if err != nil {
		return state{}, fmt.Errorf("stage 2: %w", err)
	}
	defer s.Close()
	fmt.Fprintf(out, "stage 2: retrieved session %q\n", sessionName)

	got, err := retrieveState(s, out)
	if err != nil {
		return state{}, fmt.Errorf("stage 2: %w", err)
	}
	if got != want {
		return got, fmt.Errorf("stage 2: the state differs from what stage 1 preserved: got counter %d, message %q; want counter %d, message %q",
			got.Counter, got.Message, want.Counter, want.Message)
	}
	fmt.Fprintf(out, "stage 2: counter %d (%d + 1)\n", got.Counter+1, got.Counter)
	fmt.Fprintf(out, "stage 2: message %q\n", got.Message)
	if err := s.Finish(); err != nil {
		return got, fmt.Errorf("stage 2: %w", err)
	}
	fmt.Fprintf(out, "stage 2: finished session %q\n", sessionName)
	if err := s.Close(); err != nil {
		return got, fmt.Errorf("stage 2: %w", err)
	}
	return got, nil
}

// retrieveState takes the state memfd back from s and decodes it.
func retrieveState(s *liveupdate.Session, out io.Writer) (state, error) {
	f, err := s.Retrieve(stateToken)
	if err != nil {
		return state{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return state{}, err
	}
	if fi.Size() > maxState {
		return state{}, fmt.Errorf("the memfd of token %d holds %d bytes, not the state stage 1 wrote", stateToken, fi.Size())
	}
	// Read from offset 0: the file position is preserved too.
	data, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return state{}, fmt.Errorf("read the memfd of token %d: %w", stateToken, err)
	}
	fmt.Fprintf(out, "stage 2: retrieved token %d, a memfd of %d bytes: %s\n", stateToken, len(data), data)
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || dec.More() {
		return state{}, fmt.Errorf("the memfd of token %d holds %q, not the state stage 1 wrote", stateToken, data)
	}
	return st, nil
}
