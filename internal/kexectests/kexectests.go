// Package kexectests ports the Linux kernel's four two-stage live-update
// selftests to Go: luo_kexec_simple, luo_multi_session,
// luo_stress_sessions and luo_stress_files, from
// tools/testing/selftests/liveupdate in torvalds/linux (@637315cb), with
// their shared driver luo_test() and helpers from luo_test_utils.c.
//
// Each test keeps the kernel's session names, tokens, payloads, order of
// calls and checks. Stage 1 runs before a live update: it creates a state
// session holding a memfd that contains "2", then the test's sessions and
// memfds, and hands back the session fds, which must stay open until the
// kexec (the C tests fork a detached daemon to hold them). Stage 2 runs in
// the next kernel: it reads the state memfd, retrieves every session,
// verifies every memfd's contents, finishes every session and returns the
// line the C test prints on success, such as "SIMPLE KEXEC TEST PASSED".
// Which stage runs is detected as luo_test() does it, by retrieving the
// state session (DetectStage).
//
// The tests take a *liveupdate.Device, so they run unchanged on a real
// kernel (liveupdate.Open, a real kexec between the stages, the stage-1
// sessions held by a detached process) and on the fake kernel of package
// liveupdate/fake (fake.Kernel.Open, with fake.Kernel.Kexec between the
// stages).
//
// Where the Go differs from the C:
//   - Errors are returned, as *Error values that name the test, the stage,
//     the session and token and, for a wrong payload, what was expected and
//     what was found; the C prints and exits.
//   - Stage 1 does not fork: the caller keeps the returned sessions open.
//   - memfds are created close-on-exec (the C passes no flags), so that a
//     concurrent fork and exec cannot inherit them; the flag belongs to the
//     fd, not to the preserved file.
//   - A shortfall of RLIMIT_NOFILE that cannot be fixed (EPERM) is returned
//     as an error matching ErrSkip, where the C calls ksft_exit_skip.
//   - stress-files raises RLIMIT_NOFILE to 510+32 in stage 1, as the
//     liveupdate.c preserve_many_files test does; torvalds' luo_stress_files
//     does not raise it (it holds a few fds at a time), and the v6 patch that
//     added it raised it to 500+32. Go raises the soft limit to the hard
//     limit at start-up, so this is a no-op unless the hard limit is low.
package kexectests

import (
	"errors"
	"fmt"
	"strconv"
)

// Test is one two-stage kexec test. All and ByName return fresh values:
// changing one (its payloads, say, to see Stage2 fail) changes no other.
type Test struct {
	// Name is the test's short name: "simple", "multi-session",
	// "stress-sessions" or "stress-files".
	Name string
	// Program is the kernel selftest it ports, such as "luo_kexec_simple".
	Program string
	// StateSession names the session that carries the stage across the
	// kexec; its presence tells stage 2 from stage 1.
	StateSession string
	// StateToken is the token of the state session's memfd, which holds
	// the next stage's number ("2", see StateValue).
	StateToken uint64
	// Sessions are the test's sessions, created in this order after the
	// state session, each with its memfds preserved in order.
	Sessions []SessionSpec
	// NoFileLimit, when not 0, is the number of fds stage 1 first makes
	// room for: it raises the soft RLIMIT_NOFILE to at least
	// NoFileLimit+NoFileSlack (see EnsureNoFileLimit).
	NoFileLimit uint64
	// OneByOne makes stage 2 retrieve, verify, finish and close each
	// session before it retrieves the next (luo_stress_sessions). Without
	// it, stage 2 retrieves every session first, then verifies them in
	// order, then finishes and closes them in order (luo_multi_session).
	OneByOne bool
	// Passed is what Stage2 returns on success: the C test's last line,
	// which it prints framed as "--- " + Passed + " ---".
	Passed string
}

// SessionSpec is one session of a test.
type SessionSpec struct {
	Name  string
	Files []FileSpec // memfds, preserved in this order; none for an empty session
}

// FileSpec is one preserved memfd: a page-sized memfd whose first bytes
// are Data followed by a NUL.
type FileSpec struct {
	Token uint64
	Data  string
}

// StateValue is the number stage 1 writes into the state memfd ("2"), the
// stage that comes next; stage 2 fails if it finds another.
const StateValue = 2

// NoFileSlack is what luo_ensure_nofile_limit adds to the fds a test needs,
// for the test's own use.
const NoFileSlack = 32

// Sizes of the stress tests.
const (
	StressSessions = 2000 // luo_stress_sessions: NUM_SESSIONS
	StressFiles    = 500  // luo_stress_files: NUM_FILES
)

// All returns the four tests, in the kernel Makefile's order: simple,
// multi-session, stress-sessions, stress-files.
func All() []Test {
	return []Test{simple(), multiSession(), stressSessions(), stressFiles()}
}

// ByName returns the test with that Name, or with that Program (such as
// "luo_kexec_simple"); false when there is none.
func ByName(name string) (Test, bool) {
	for _, t := range All() {
		if t.Name == name || t.Program == name {
			return t, true
		}
	}
	return Test{}, false
}

// simple is luo_kexec_simple.c.
func simple() Test {
	return Test{
		Name:         "simple",
		Program:      "luo_kexec_simple",
		StateSession: "kexec_simple_state",
		StateToken:   999,
		Sessions: []SessionSpec{
			{Name: "test-session", Files: []FileSpec{{Token: 0x1A, Data: "hello kexec world"}}},
		},
		Passed: "SIMPLE KEXEC TEST PASSED",
	}
}

// multiSession is luo_multi_session.c.
func multiSession() Test {
	return Test{
		Name:         "multi-session",
		Program:      "luo_multi_session",
		StateSession: "kexec_multi_state",
		StateToken:   998,
		Sessions: []SessionSpec{
			{Name: "multi-test-empty-1"},
			{Name: "multi-test-empty-2"},
			{Name: "multi-test-files-1", Files: []FileSpec{
				{Token: 0x1001, Data: "Data for session files 1"},
			}},
			{Name: "multi-test-files-2", Files: []FileSpec{
				{Token: 0x2002, Data: "First file for session files 2"},
				{Token: 0x3003, Data: "Second file for session files 2"},
			}},
		},
		Passed: "MULTI-SESSION KEXEC TEST PASSED",
	}
}

// stressSessions is luo_stress_sessions.c.
func stressSessions() Test {
	ss := make([]SessionSpec, StressSessions)
	for i := range ss {
		ss[i].Name = "many-test-" + strconv.Itoa(i)
	}
	return Test{
		Name:         "stress-sessions",
		Program:      "luo_stress_sessions",
		StateSession: "kexec_many_state",
		StateToken:   999,
		Sessions:     ss,
		NoFileLimit:  StressSessions,
		OneByOne:     true,
		Passed:       fmt.Sprintf("MANY-SESSIONS KEXEC TEST PASSED (%d sessions)", StressSessions),
	}
}

// stressFiles is luo_stress_files.c.
func stressFiles() Test {
	fs := make([]FileSpec, StressFiles)
	for i := range fs {
		fs[i] = FileSpec{Token: uint64(i), Data: "file-data-" + strconv.Itoa(i)}
	}
	return Test{
		Name:         "stress-files",
		Program:      "luo_stress_files",
		StateSession: "kexec_many_files_state",
		StateToken:   9999,
		Sessions:     []SessionSpec{{Name: "many_files_session", Files: fs}},
		// luo_stress_files holds few fds at once and raises no limit.
		Passed: fmt.Sprintf("MANY-FILES KEXEC TEST PASSED (%d files)", StressFiles),
	}
}

// ErrMismatch reports a preserved memfd whose contents after the kexec are
// not what stage 1 wrote, or a state memfd that does not hold StateValue.
// The *Error that wraps it has the expected and found contents.
var ErrMismatch = errors.New("data mismatch")

// ErrWrongStage reports that the system is not in the stage asked for: the
// state session exists when stage 1 was asked for, or is missing when
// stage 2 was. The *Error that wraps it has both stages.
var ErrWrongStage = errors.New("stage mismatch")

// ErrSkip reports a test that cannot run here, as the C tests'
// ksft_exit_skip: RLIMIT_NOFILE cannot be raised enough (EPERM).
var ErrSkip = errors.New("skipped")

// Error is the error of a failed stage. It says what failed and where:
// the test, the stage, the session and token, and for a mismatch what was
// expected and what was found. errors.Is sees through it to the cause:
// ErrMismatch, ErrWrongStage, ErrSkip, or the *liveupdate.Error (and its
// errno) of a failed request.
type Error struct {
	Test     string // the test's Name
	Stage    int    // 1 or 2; 0 for DetectStage on its own
	Session  string // the session acted on, if any
	Token    uint64 // the file's token, when HasToken
	HasToken bool
	// Op is what failed: "detect stage", "raise RLIMIT_NOFILE",
	// "create session", "memfd_create", "ftruncate", "mmap", "munmap",
	// "preserve", "retrieve session", "retrieve", "verify", "read stage",
	// "finish" or "close".
	Op string
	// Want and Got are, for ErrMismatch, the expected and the found
	// contents (for "read stage", the stage numbers); for ErrWrongStage,
	// the stage asked for and the stage detected.
	Want, Got string
	Err       error // the cause
}

// Error says, in one line, what failed and where: the test, the stage,
// the session and token, the operation, and the cause or the mismatch.
func (e *Error) Error() string {
	b := []byte("kexectests: ")
	b = append(b, e.Test...)
	if e.Stage != 0 {
		b = append(b, ": stage "...)
		b = strconv.AppendInt(b, int64(e.Stage), 10)
	}
	b = append(b, ": "...)
	if e.Session != "" {
		b = append(b, "session "...)
		b = strconv.AppendQuote(b, e.Session)
		if e.HasToken {
			b = append(b, ' ')
		}
	}
	if e.HasToken {
		b = append(b, "token 0x"...)
		b = strconv.AppendUint(b, e.Token, 16)
	}
	if e.Session != "" || e.HasToken {
		b = append(b, ": "...)
	}
	b = append(b, e.Op...)
	b = append(b, ": "...)
	switch {
	case e.Err == ErrWrongStage:
		present := "MISSING"
		if e.Got == "2" {
			present = "EXISTS"
		}
		b = fmt.Appendf(b, "%v: requested stage %s, but the system is in stage %s (state session %s)",
			e.Err, e.Want, e.Got, present)
	case e.Err == ErrMismatch && e.Op == "read stage":
		b = fmt.Appendf(b, "%v: expected stage %s, but the state file contains %s", e.Err, e.Want, e.Got)
	case e.Err == ErrMismatch:
		b = fmt.Appendf(b, "%v: expected %s, got %s", e.Err, quote(e.Want), quote(e.Got))
	case e.Err != nil:
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// quote quotes s for a message, shortened when long (a page of garbage).
func quote(s string) string {
	const max = 96
	if len(s) > max {
		return strconv.Quote(s[:max]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return strconv.Quote(s)
}
