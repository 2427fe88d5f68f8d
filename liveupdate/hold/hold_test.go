//go:build linux

package hold

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the holder Detach starts.
func TestMain(m *testing.M) {
	Main(os.Args[1:])
	os.Exit(m.Run())
}

// TestDetach hands two sessions to a holder, closes this process's copies,
// and checks that the sessions live until the holder is killed.
func TestDetach(t *testing.T) {
	k := faketest.New(t)
	dev := faketest.Open(t, k)
	var ss []*liveupdate.Session
	for _, name := range []string{"a", "b"} {
		s, err := dev.CreateSession(name)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	h, err := Detach(ss)
	if errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("the host cannot execute this test binary (qemu-user without binfmt_misc): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	pid := h.Pid()
	for _, s := range ss {
		s.Close()
	}
	if n := len(k.State().Outgoing); n != 2 {
		t.Fatalf("%d outgoing sessions after the holder took them, want 2", n)
	}
	sid, err := unix.Getsid(pid)
	if err != nil || sid != pid {
		t.Errorf("holder %d is in session %d (%v), want its own", pid, sid, err)
	}

	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("holder %d still there after Release: kill 0: %v", pid, err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	// The fake sees the holder's sockets close on its own goroutines.
	deadline := time.Now().Add(10 * time.Second)
	for len(k.State().Outgoing) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sessions outlived the holder: %+v", k.State().Outgoing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDetachNothing refuses an empty list.
func TestDetachNothing(t *testing.T) {
	if _, err := Detach(nil); err == nil {
		t.Error("Detach(nil) succeeded")
	}
}
