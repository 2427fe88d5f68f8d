//go:build linux

package conformance

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// TestHeldFDs shows which descriptors a case of a split run may leave
// open for the next boot: its kept session, the fake kernel's end of it
// and the fake's copy of the file preserved in it, and not a descriptor it
// leaked.
func TestHeldFDs(t *testing.T) {
	if fdtest.Table() == nil {
		t.Skip("no /proc/self/fd")
	}
	k := faketest.New(t)
	d := faketest.Open(t, k)
	before := fdtest.Table()
	e := &env{T: t, tgt: Target{Split: &Split{RunID: "t"}}, su: &suite{}, id: "g/c"}
	s, err := d.CreateSession("held")
	if err != nil {
		t.Fatal(err)
	}
	e.sessions = append(e.sessions, s)
	defer s.Close()
	m := e.memfd("preserved")
	if err := s.PreserveFD(fdOf(m), 1); err != nil {
		t.Fatal(err)
	}
	m.Close()
	e.devices = append(e.devices, d)
	e.keepSessions()
	if len(e.su.held) != 1 || e.su.held[0] != s || d.Fd() >= 0 {
		t.Fatalf("keepSessions kept %v (device fd %d), want the session and the device closed", e.su.held, d.Fd())
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	var held []string
	for fd, link := range fdtest.Table() {
		if before[fd] != link && e.heldFD(fd) {
			held = append(held, link)
		}
	}
	slices.Sort(held)
	// The kept session and the fake's end of it are sockets; the fake's
	// copy of the memfd is the third.
	if len(held) != 3 || !strings.HasPrefix(held[0], "/memfd:") || !strings.HasPrefix(held[1], "socket:") || !strings.HasPrefix(held[2], "socket:") {
		t.Errorf("held descriptors %q: want the fake's copy of the memfd, the session and the fake's end of it", held)
	}
	if !e.heldFD(s.Fd()) {
		t.Errorf("the kept session's fd %d does not count as held", s.Fd())
	}
	left := withoutHeld(before, fdtest.Table(), e.heldFD)
	for _, fd := range p {
		if _, ok := left[fd]; !ok || e.heldFD(fd) {
			t.Errorf("the leaked pipe fd %d counts as held", fd)
		}
	}
}
