//go:build linux

package liveupdate_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// A Session dropped without Close must keep its session: no finalizer may
// close the fd behind the user's back.
func TestSessionDroppedWithoutCloseSurvivesGC(t *testing.T) {
	k := faketest.New(t)
	dev := faketest.Open(t, k)
	fd := func() int {
		s, err := dev.CreateSession("gc-survivor")
		if err != nil {
			t.Fatal(err)
		}
		return s.Fd()
	}()
	for range 5 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("session fd %d closed after GC: %v", fd, err)
	}
	st := k.State()
	if len(st.Outgoing) != 1 || st.Outgoing[0].Name != "gc-survivor" {
		t.Fatalf("session lost after GC: %+v", st.Outgoing)
	}
	unix.Close(fd)
	if st := k.State(); len(st.Outgoing) != 0 {
		t.Fatalf("raw close of the last copy did not release the session: %+v", st.Outgoing)
	}
}
