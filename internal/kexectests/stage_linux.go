//go:build linux

package kexectests

import (
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/go-luo/luo/internal/cstr"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// afterPreserve, when set (by this package's tests), is called with each
// memfd right after stage 1 has preserved it and before it is closed, so a
// test can change a payload the way an agent's bug would.
var afterPreserve func(session string, token uint64, f *os.File)

// DetectStage tells which stage the system is in, as luo_test() does: it
// retrieves the test's state session. ENOENT means stage 1 (state is nil);
// success means stage 2, and state is the retrieved state session, which
// the caller owns and passes to Stage2 (a session can be retrieved only
// once). Any other error is returned as an *Error.
func (t Test) DetectStage(dev *liveupdate.Device) (stage int, state *liveupdate.Session, err error) {
	return t.detect(dev, 0)
}

func (t Test) detect(dev *liveupdate.Device, forStage int) (int, *liveupdate.Session, error) {
	s, err := dev.RetrieveSession(t.StateSession)
	switch {
	case err == nil:
		return 2, s, nil
	case errors.Is(err, unix.ENOENT):
		return 1, nil, nil
	}
	return 0, nil, &Error{Test: t.Name, Stage: forStage, Session: t.StateSession, Op: "detect stage", Err: err}
}

// need detects the stage and fails unless it is want. A state session
// retrieved on the way is closed, which finishes it (destroying the state
// memfd), as the C test's exit on the mismatch does.
func (t Test) need(dev *liveupdate.Device, want int) (*liveupdate.Session, error) {
	got, state, err := t.detect(dev, want)
	if err != nil {
		return nil, err
	}
	if got != want {
		if state != nil {
			state.Close()
		}
		return nil, &Error{Test: t.Name, Stage: want, Session: t.StateSession, Op: "detect stage",
			Want: strconv.Itoa(want), Got: strconv.Itoa(got), Err: ErrWrongStage}
	}
	return state, nil
}

// Run is luo_test(): it detects the stage and runs it. want is the stage
// asked for (the C tests' --stage), or 0 to run whichever is detected. In
// stage 1 it returns the sessions to keep open until the kexec; in stage 2
// the PASSED line. See Stage1 and Stage2.
func (t Test) Run(dev *liveupdate.Device, want int) (stage int, keep []*liveupdate.Session, passed string, err error) {
	stage, state, err := t.detect(dev, want)
	if err != nil {
		return 0, nil, "", err
	}
	if want != 0 && want != stage {
		if state != nil {
			state.Close()
		}
		return stage, nil, "", &Error{Test: t.Name, Stage: want, Session: t.StateSession, Op: "detect stage",
			Want: strconv.Itoa(want), Got: strconv.Itoa(stage), Err: ErrWrongStage}
	}
	if stage == 1 {
		keep, err = t.stage1(dev)
		return 1, keep, "", err
	}
	passed, err = t.stage2(dev, state)
	return 2, nil, passed, err
}

// Stage1 runs the first stage on dev, before the live update. It detects
// the stage first and fails with ErrWrongStage unless it is 1 (a state
// session found on the way is closed, so finished: the C test exits there
// and its exit closes it). Then it raises RLIMIT_NOFILE when the test
// needs it (ErrSkip on EPERM), creates the state session with its memfd
// holding "2", and creates the test's sessions and preserves their memfds,
// in the C test's order.
//
// It returns the sessions created, state session first. The caller must
// keep them open until the kexec: closing an outgoing session drops it. A
// real agent hands them to a detached process; a test on the fake closes
// them after fake.Kernel.Kexec. On error, every session created is closed
// again.
func (t Test) Stage1(dev *liveupdate.Device) (keep []*liveupdate.Session, err error) {
	if _, err := t.need(dev, 1); err != nil {
		return nil, err
	}
	return t.stage1(dev)
}

func (t Test) stage1(dev *liveupdate.Device) (keep []*liveupdate.Session, err error) {
	defer func() {
		if err != nil {
			for _, s := range keep {
				s.Close()
			}
			keep = nil
		}
	}()
	if t.NoFileLimit > 0 {
		if err := EnsureNoFileLimit(t.NoFileLimit); err != nil {
			return keep, &Error{Test: t.Name, Stage: 1, Op: "raise RLIMIT_NOFILE", Err: err}
		}
	}
	state, err := dev.CreateSession(t.StateSession)
	if err != nil {
		return keep, &Error{Test: t.Name, Stage: 1, Session: t.StateSession, Op: "create session", Err: err}
	}
	keep = append(keep, state)
	if err := t.createAndPreserve(state, t.StateSession, t.StateToken, strconv.Itoa(StateValue)); err != nil {
		return keep, err
	}
	for _, ss := range t.Sessions {
		s, err := dev.CreateSession(ss.Name)
		if err != nil {
			return keep, &Error{Test: t.Name, Stage: 1, Session: ss.Name, Op: "create session", Err: err}
		}
		keep = append(keep, s)
		for _, f := range ss.Files {
			if err := t.createAndPreserve(s, ss.Name, f.Token, f.Data); err != nil {
				return keep, err
			}
		}
	}
	return keep, nil
}

// createAndPreserve is create_and_preserve_memfd: a page-sized memfd, the
// string written through a shared mapping (snprintf: at most a page less
// one byte, then a NUL), preserved under token, and closed: the session
// keeps the file.
func (t Test) createAndPreserve(s *liveupdate.Session, session string, token uint64, data string) error {
	fail := func(op string, err error) error {
		return &Error{Test: t.Name, Stage: 1, Session: session, Token: token, HasToken: true, Op: op, Err: err}
	}
	fd, err := unix.MemfdCreate("test_mfd", unix.MFD_CLOEXEC)
	if err != nil {
		return fail("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "test_mfd")
	defer f.Close()
	page := os.Getpagesize()
	if err := unix.Ftruncate(fd, int64(page)); err != nil {
		return fail("ftruncate", err)
	}
	mem, err := unix.Mmap(fd, 0, page, unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	n := copy(mem[:page-1], data)
	mem[n] = 0
	if err := unix.Munmap(mem); err != nil {
		return fail("munmap", err)
	}
	if err := s.Preserve(f, token); err != nil {
		return fail("preserve", err)
	}
	if afterPreserve != nil {
		afterPreserve(session, token, f)
	}
	return nil
}

// Stage2 runs the second stage on dev, after the live update. state is the
// state session DetectStage retrieved; Stage2 takes it over and closes it.
// With state nil, Stage2 detects the stage itself and fails with
// ErrWrongStage unless it is 2.
//
// It reads the state memfd (which must hold "2"), retrieves the test's
// sessions, verifies every memfd (retrieve, map a page, compare the
// NUL-terminated string), finishes and closes every session and then the
// state session, in the C test's order, and returns the C test's PASSED
// line, such as "SIMPLE KEXEC TEST PASSED". The first failure ends it,
// with an *Error naming the session, the token and, for a wrong payload
// (ErrMismatch), what was expected and found. Every session it retrieved
// is closed whatever happens; closing finishes an incoming session, as the
// C test's exit does.
func (t Test) Stage2(dev *liveupdate.Device, state *liveupdate.Session) (passed string, err error) {
	if state == nil {
		if state, err = t.need(dev, 2); err != nil {
			return "", err
		}
	}
	return t.stage2(dev, state)
}

func (t Test) stage2(dev *liveupdate.Device, state *liveupdate.Session) (passed string, err error) {
	var open []*liveupdate.Session // not yet closed, state first
	open = append(open, state)
	defer func() {
		for _, s := range open {
			if s != nil {
				s.Close()
			}
		}
	}()
	// closeAt closes open[i], and marks it closed.
	closeAt := func(i int, name string) error {
		s := open[i]
		open[i] = nil
		if err := s.Close(); err != nil {
			return &Error{Test: t.Name, Stage: 2, Session: name, Op: "close", Err: err}
		}
		return nil
	}
	finish := func(s *liveupdate.Session, name string) error {
		if err := s.Finish(); err != nil {
			return &Error{Test: t.Name, Stage: 2, Session: name, Op: "finish", Err: err}
		}
		return nil
	}

	if err := t.readStage(state); err != nil {
		return "", err
	}
	retrieve := func(ss SessionSpec) (*liveupdate.Session, error) {
		s, err := dev.RetrieveSession(ss.Name)
		if err != nil {
			return nil, &Error{Test: t.Name, Stage: 2, Session: ss.Name, Op: "retrieve session", Err: err}
		}
		open = append(open, s)
		return s, nil
	}
	verify := func(s *liveupdate.Session, ss SessionSpec) error {
		for _, f := range ss.Files {
			m, err := t.retrieveAndVerify(s, ss.Name, f.Token, &f.Data)
			if err != nil {
				return err
			}
			m.Close()
		}
		return nil
	}

	if t.OneByOne {
		for _, ss := range t.Sessions {
			s, err := retrieve(ss)
			if err != nil {
				return "", err
			}
			if err := verify(s, ss); err != nil {
				return "", err
			}
			if err := finish(s, ss.Name); err != nil {
				return "", err
			}
			if err := closeAt(len(open)-1, ss.Name); err != nil {
				return "", err
			}
			open = open[:len(open)-1]
		}
	} else {
		first := len(open)
		for _, ss := range t.Sessions {
			if _, err := retrieve(ss); err != nil {
				return "", err
			}
		}
		for i, ss := range t.Sessions {
			if err := verify(open[first+i], ss); err != nil {
				return "", err
			}
		}
		for i, ss := range t.Sessions {
			if err := finish(open[first+i], ss.Name); err != nil {
				return "", err
			}
			if err := closeAt(first+i, ss.Name); err != nil {
				return "", err
			}
		}
	}

	if err := finish(state, t.StateSession); err != nil {
		return "", err
	}
	if err := closeAt(0, t.StateSession); err != nil {
		return "", err
	}
	return t.Passed, nil
}

// readStage is restore_and_read_stage: it retrieves the state memfd
// (mapping it, as restore_and_verify_memfd does with no expected data),
// reads up to 31 bytes from its file position and parses them as atoi
// does; the number must be StateValue.
func (t Test) readStage(state *liveupdate.Session) error {
	f, err := t.retrieveAndVerify(state, t.StateSession, t.StateToken, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf [31]byte
	n, err := f.Read(buf[:])
	if err != nil && err != io.EOF {
		return &Error{Test: t.Name, Stage: 2, Session: t.StateSession, Token: t.StateToken, HasToken: true, Op: "read stage", Err: err}
	}
	if got := atoi(buf[:n]); got != StateValue {
		return &Error{Test: t.Name, Stage: 2, Session: t.StateSession, Token: t.StateToken, HasToken: true, Op: "read stage",
			Want: strconv.Itoa(StateValue), Got: strconv.Itoa(got), Err: ErrMismatch}
	}
	return nil
}

// retrieveAndVerify is restore_and_verify_memfd: RETRIEVE_FD, a shared
// read-only mapping of one page, and, when want is not nil, a comparison
// of the NUL-terminated string there with *want (strcmp). It returns the
// retrieved file, which the caller closes.
func (t Test) retrieveAndVerify(s *liveupdate.Session, session string, token uint64, want *string) (*os.File, error) {
	fail := func(op string, err error) error {
		return &Error{Test: t.Name, Stage: 2, Session: session, Token: token, HasToken: true, Op: op, Err: err}
	}
	f, err := s.Retrieve(token)
	if err != nil {
		return nil, fail("retrieve", err)
	}
	page := os.Getpagesize()
	mem, err := unix.Mmap(int(f.Fd()), 0, page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fail("mmap", err)
	}
	defer unix.Munmap(mem)
	if want == nil {
		return f, nil
	}
	got, err := cstring(f, mem)
	if err != nil {
		f.Close()
		return nil, fail("verify", err)
	}
	if exp := cstr.String([]byte(*want)); got != exp {
		f.Close()
		e := fail("verify", ErrMismatch).(*Error)
		e.Want, e.Got = exp, got
		return nil, e
	}
	return f, nil
}

// cstring reads the NUL-terminated string at the start of mem, a page of
// f mapped shared. A page wholly past the end of the file cannot be read
// (SIGBUS): an empty file reads as "", and a fault (the file shrank
// meanwhile) is returned as an error.
func cstring(f *os.File, mem []byte) (s string, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", err
	}
	if st.Size == 0 {
		return "", nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("reading the mapped file faulted; it is shorter than it was")
		}
	}()
	return cstr.String(mem), nil
}

// atoi parses b as C's atoi: leading white space, an optional sign, then
// digits up to the first non-digit; 0 when there are none.
func atoi(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

// EnsureNoFileLimit is luo_ensure_nofile_limit: it makes the soft
// RLIMIT_NOFILE at least n+NoFileSlack, raising the hard limit too when it
// is lower. When that is not allowed the error matches ErrSkip and EPERM.
func EnsureNoFileLimit(n uint64) error {
	min := n + NoFileSlack
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if uint64(rl.Cur) >= min {
		return nil
	}
	rl.Cur = min
	if rl.Cur > rl.Max {
		rl.Max = rl.Cur
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		if errors.Is(err, unix.EPERM) {
			return &skipError{"insufficient privileges to set RLIMIT_NOFILE to " + strconv.FormatUint(min, 10), err}
		}
		return err
	}
	return nil
}

// skipError matches ErrSkip and wraps the errno.
type skipError struct {
	msg string
	err error
}

func (e *skipError) Error() string {
	return e.msg + ": " + e.err.Error() + " (" + ErrSkip.Error() + ")"
}
func (e *skipError) Unwrap() []error { return []error{ErrSkip, e.err} }
