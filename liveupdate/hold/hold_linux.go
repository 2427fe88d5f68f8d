//go:build linux

package hold

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// Flag is the hidden command-line flag that starts a program as the holder:
// "PROGRAM -luo-hold N" holds the N session fds it inherits as fds 4 to
// 4+N-1; fd 3 is the pipe on which it reports that it holds them.
const Flag = "-luo-hold"

// readyTimeout is how long Detach waits for the holder to report.
const readyTimeout = 30 * time.Second

// Holder is a detached process that holds copies of session fds.
type Holder struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the holder has exited and been reaped
}

// Pid returns the holder's process id: SIGTERM or SIGKILL to it, from any
// process, releases the sessions as Release does.
func (h *Holder) Pid() int { return h.cmd.Process.Pid }

// Release ends the holder (SIGKILL) and returns once it has exited, its
// copies of the session fds closed: a session no other process has open is
// then dropped by the kernel. Releasing a holder that has already exited,
// or releasing twice, does nothing.
func (h *Holder) Release() error {
	err := h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("hold: release holder (pid %d): %w", h.Pid(), err)
	}
	return nil
}

// Detach starts a detached copy of this program (os.Executable) that holds
// copies of the sessions' fds until the kexec or until released, and
// returns it. It returns once the copy has checked that it holds every
// session, so the caller may then close its own Sessions and exit. The copy
// runs in a new session (setsid) with its working directory at / and
// stdin, stdout and stderr on /dev/null; while this process lives it is
// also reaped here when it ends.
//
// The program's main must call Main before anything else, or the copy does
// not become a holder and Detach fails.
func Detach(sessions []*liveupdate.Session) (*Holder, error) {
	if len(sessions) == 0 {
		return nil, errors.New("hold: no sessions to hold")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("hold: cannot find this program to start the holder: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	defer r.Close()
	files := []*os.File{w}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, s := range sessions {
		// A dup of the fd, so that the *os.File (and its finalizer) owns
		// a copy and never the Session's own fd.
		fd, err := unix.FcntlInt(uintptr(s.Fd()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("hold: dup session %s: %w", s, err)
		}
		files = append(files, os.NewFile(uintptr(fd), "session "+s.String()))
	}

	cmd := exec.Command(exe, Flag, strconv.Itoa(len(sessions)))
	cmd.ExtraFiles = files // fd 3 the pipe, fds 4... the sessions
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hold: start holder: %w", err)
	}
	// Close our copies now: the write end, so that a holder that dies
	// gives EOF, and the session dups, which the holder has.
	for _, f := range files {
		f.Close()
	}
	files = nil

	r.SetReadDeadline(time.Now().Add(readyTimeout))
	line, rerr := bufio.NewReader(r).ReadString('\n')
	if line != "OK\n" {
		cmd.Process.Kill()
		cmd.Wait()
		switch {
		case strings.HasPrefix(line, "ERR "):
			return nil, fmt.Errorf("hold: holder (pid %d) refused: %s", cmd.Process.Pid, strings.TrimSpace(line[4:]))
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("hold: holder (pid %d) did not report within %v", cmd.Process.Pid, readyTimeout)
		}
		return nil, fmt.Errorf("hold: holder (pid %d) exited without taking the sessions: "+
			"%s must call hold.Main first in main (and in TestMain)", cmd.Process.Pid, exe)
	}
	h := &Holder{cmd: cmd, done: make(chan struct{})}
	go func() { // reap it, should this process outlive it
		cmd.Wait()
		close(h.done)
	}()
	return h, nil
}

// Main makes this process the holder when args (os.Args[1:]) start with
// Flag, and then never returns; otherwise it returns at once. Call it first
// in main, and in TestMain of a test binary whose tests call Detach.
func Main(args []string) {
	if len(args) == 0 || args[0] != Flag {
		return
	}
	os.Exit(holdForever(args[1:]))
}

// holdForever is the holder: it checks its inherited fds, reports on fd 3,
// and waits until a signal ends it. It returns only on error.
func holdForever(args []string) int {
	ready := os.NewFile(3, "ready")
	fail := func(format string, a ...any) int {
		fmt.Fprintf(ready, "ERR "+format+"\n", a...)
		return 1
	}
	if len(args) != 1 {
		return fail("usage: %s N", Flag)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fail("bad session count %q", args[0])
	}
	for fd := 4; fd < 4+n; fd++ {
		if !liveupdate.IsSession(fd) {
			return fail("inherited fd %d is not a LUO session", fd)
		}
	}
	if _, err := ready.WriteString("OK\n"); err != nil {
		return 1
	}
	ready.Close()
	for {
		unix.Pause() // until a signal's default action ends the process
	}
}
