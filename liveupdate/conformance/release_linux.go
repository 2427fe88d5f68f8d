//go:build linux

package conformance

import (
	"errors"
	"os"
	"os/exec"
	"strconv"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// The release cases check that an outgoing session lives exactly as long
// as some copy of its fd, in this process or another, and that its release
// unpreserves its files. Releases may take a moment (the fake kernel reads
// the close from a socket), so the cases poll for them.

func releaseCases() []testCase {
	return []testCase{
		{"session_close_unpreserves_files", releaseClose},
		{"last_copy_closed_by_session_close", releaseLastBySessionClose},
		{"last_copy_closed_by_unix_close", releaseLastByUnixClose},
		{"child_process_copy_keeps_session", releaseChild},
	}
}

// preserveElsewhere preserves m in a new scratch session, which it closes
// again, and returns the error. With DoublePreserveBusy it fails with
// EBUSY exactly while m is preserved somewhere else.
func (e *env) preserveElsewhere(d *liveupdate.Device, m int) error {
	s, err := d.CreateSession(e.name("scratch"))
	if err != nil {
		return err
	}
	defer s.Close()
	return s.PreserveFD(m, 1)
}

func releaseClose(e *env) {
	d := e.open()
	name := e.name("rel")
	s := e.create(d, name)
	m := e.memfd("unpreserved")
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	if e.f.DoublePreserveBusy {
		e.mustExpect(e.preserveElsewhere(d, fdOf(m)), unix.EBUSY, "preserve the memfd in another session while it is preserved")
	}
	e.mustExpect(s.Close(), 0, "close the session")
	e.waitReleased(d, name)
	e.eventually("preserve the memfd of the closed session in another session", func() error {
		return e.preserveElsewhere(d, fdOf(m))
	})
	if got := e.contents(m); got != "unpreserved" {
		e.Errorf("memfd holds %q after its session was released", got)
	}
}

// copies makes three copies of a new session's fd: the Session, a raw dup
// and a NewSession of that dup. It returns them with the session's name and
// a memfd preserved in it.
func (e *env) copies(d *liveupdate.Device) (s *liveupdate.Session, raw int, closeRaw func() error, w *liveupdate.Session, name string, m *os.File) {
	e.Helper()
	name = e.name("copies")
	s = e.create(d, name)
	m = e.memfd("x")
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	raw, err := unix.FcntlInt(uintptr(s.Fd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("dup: %v", err)
	}
	closeRaw = e.ownFD(raw)
	w, err = liveupdate.NewSession(raw)
	e.mustExpect(err, 0, "NewSession of a dup")
	e.track(w)
	return s, raw, closeRaw, w, name, m
}

// stillPreserved checks that the session name and its memfd m are still
// there.
func (e *env) stillPreserved(d *liveupdate.Device, name string, m *os.File, why string) {
	e.Helper()
	e.stillThere(d, name, why)
	if e.f.DoublePreserveBusy {
		e.expect(e.preserveElsewhere(d, fdOf(m)), unix.EBUSY, "preserve the memfd elsewhere %s", why)
	}
}

func releaseLastBySessionClose(e *env) {
	d := e.open()
	s, _, closeRaw, w, name, m := e.copies(d)
	e.mustExpect(s.Close(), 0, "close the Session")
	e.stillPreserved(d, name, m, "after closing the Session while two copies are open")
	e.mustExpect(closeRaw(), 0, "close the raw dup")
	e.stillPreserved(d, name, m, "after closing the raw dup while the NewSession copy is open")
	e.expect(w.PreserveFD(fdOf(e.memfd("y")), 2), 0, "preserve through the last copy")
	e.mustExpect(w.Close(), 0, "close the last copy (Session.Close of the NewSession)")
	e.waitReleased(d, name)
	e.eventually("preserve the memfd elsewhere after the release", func() error { return e.preserveElsewhere(d, fdOf(m)) })
}

func releaseLastByUnixClose(e *env) {
	d := e.open()
	s, _, closeRaw, w, name, m := e.copies(d)
	e.mustExpect(w.Close(), 0, "close the NewSession copy")
	e.stillPreserved(d, name, m, "after closing the NewSession copy while two copies are open")
	e.mustExpect(s.Close(), 0, "close the Session")
	e.stillPreserved(d, name, m, "after closing the Session while the raw dup is open")
	e.mustExpect(closeRaw(), 0, "close the last copy with close(2)")
	e.waitReleased(d, name)
	e.eventually("preserve the memfd elsewhere after the release", func() error { return e.preserveElsewhere(d, fdOf(m)) })
}

func releaseChild(e *env) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		e.Skipf("no sleep(1) to run as a child: %v", err)
	}
	d := e.open()
	name := e.name("child")
	s := e.create(d, name)
	m := e.memfd("held by a child")
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	dup, err := unix.FcntlInt(uintptr(s.Fd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("dup: %v", err)
	}
	inherit := os.NewFile(uintptr(dup), "session")
	cmd := exec.Command(sleep, "600")
	cmd.ExtraFiles = []*os.File{inherit}
	err = cmd.Start()
	inherit.Close()
	if err != nil {
		e.Fatalf("start %s: %v", sleep, err)
	}
	done := false
	e.Cleanup(func() {
		if !done {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// The child holds the session as its fd 3.
	theirs, err1 := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd/3")
	ours, err2 := os.Readlink("/proc/self/fd/" + strconv.Itoa(s.Fd()))
	if err1 != nil || err2 != nil || theirs != ours {
		e.Fatalf("the child's fd 3 is %q (%v), want our session %q (%v)", theirs, err1, ours, err2)
	}
	e.mustExpect(s.Close(), 0, "close our copy of the session")
	e.stillPreserved(d, name, m, "while a child process holds a copy")
	if err := cmd.Process.Kill(); err != nil {
		e.Fatalf("kill the child: %v", err)
	}
	var exitErr *exec.ExitError
	if err := cmd.Wait(); err != nil && !errors.As(err, &exitErr) {
		e.Fatalf("wait for the child: %v", err)
	}
	done = true
	e.waitReleased(d, name)
	e.eventually("preserve the memfd elsewhere after the child exited", func() error { return e.preserveElsewhere(d, fdOf(m)) })
}
