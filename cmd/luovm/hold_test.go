//go:build linux

package main

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/conformance"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// TestHolderServesConformance checks that the guest's holder and the
// conformance suite's Hold speak the same protocol: the sessions Hold
// hands over end up held, still sessions, and the suite's copies closed.
func TestHolderServesConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hold.sock")
	l, err := startHolder(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k := faketest.New(t)
	d := faketest.Open(t, k)
	var ss []*liveupdate.Session
	for _, name := range []string{"a", "b", "c"} {
		s, err := d.CreateSession(name)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	t.Setenv(conformance.BootEnv, "0")
	t.Setenv(conformance.RunEnv, "holdtest")
	t.Setenv(conformance.HoldEnv, path)
	split, err := conformance.SplitFromEnv()
	if err != nil || split == nil {
		t.Fatalf("SplitFromEnv: %v, %v", split, err)
	}
	held.Lock()
	before := len(held.fds)
	held.Unlock()
	if err := split.Hold(ss); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	held.Lock()
	got := append([]int(nil), held.fds[before:]...)
	held.fds = held.fds[:before]
	held.Unlock()
	if len(got) != len(ss) {
		t.Fatalf("the holder holds %d fds, want %d", len(got), len(ss))
	}
	// Hold closed the suite's copies; the held ones keep the sessions.
	if _, err := d.CreateSession("a"); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create a held session again: %v, want EEXIST", err)
	}
	for _, fd := range got {
		if !liveupdate.IsSession(fd) {
			t.Errorf("held fd %d is not a session", fd)
		}
		unix.Close(fd)
	}
}
