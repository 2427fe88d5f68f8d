//go:build linux

package conformance

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// selftestCases are the 15 tests of the kernel's
// tools/testing/selftests/liveupdate/liveupdate.c, in
// their order and with their names, session names and tokens.
func selftestCases() []testCase {
	return []testCase{
		{"01_basic_open_close", selftestBasicOpenClose},
		{"02_exclusive_open", selftestExclusiveOpen},
		{"03_create_duplicate_session", selftestCreateDuplicateSession},
		{"04_create_distinct_sessions", selftestCreateDistinctSessions},
		{"05_preserve_memfd", selftestPreserveMemfd},
		{"06_preserve_multiple_memfds", selftestPreserveMultipleMemfds},
		{"07_preserve_complex_scenario", selftestPreserveComplexScenario},
		{"08_preserve_unsupported_fd", selftestPreserveUnsupportedFD},
		{"09_prevent_double_preservation", selftestPreventDoublePreservation},
		{"10_create_session_no_null_termination", selftestNoNullTermination},
		{"11_create_session_empty_name", selftestEmptyName},
		{"12_get_session_name", selftestGetSessionName},
		{"13_get_session_name_max_length", selftestGetSessionNameMaxLength},
		{"14_preserve_many_sessions", selftestManySessions},
		{"15_preserve_many_files", selftestManyFiles},
	}
}

func selftestBasicOpenClose(e *env) {
	d, err := e.tgt.Open()
	e.mustExpect(err, 0, "open")
	e.expect(d.Close(), 0, "close")
}

func selftestExclusiveOpen(e *env) {
	e.open()
	d, err := e.tgt.Open()
	if err == nil {
		d.Close()
	}
	e.expect(err, unix.EBUSY, "second open while the device is held")
}

func selftestCreateDuplicateSession(e *env) {
	d := e.open()
	e.create(d, "duplicate-session-test")
	s, err := d.CreateSession("duplicate-session-test")
	if err == nil {
		e.track(s)
	}
	e.expect(err, unix.EEXIST, "create duplicate-session-test again")
}

func selftestCreateDistinctSessions(e *env) {
	d := e.open()
	s1 := e.create(d, "distinct-session-1")
	s2 := e.create(d, "distinct-session-2")
	if s1.Fd() < 0 || s2.Fd() < 0 || s1.Fd() == s2.Fd() {
		e.Errorf("session fds %d and %d: want two distinct descriptors", s1.Fd(), s2.Fd())
	}
}

func selftestPreserveMemfd(e *env) {
	d := e.open()
	m := e.memfd("hello liveupdate")
	s := e.create(d, "preserve-memfd-test")
	e.mustExpect(s.PreserveFD(fdOf(m), 0x1234), 0, "preserve memfd under 0x1234")
	e.mustExpect(s.Close(), 0, "close the session")
	if got := e.contents(m); got != "hello liveupdate" {
		e.Errorf("memfd after the session was closed holds %q, want %q", got, "hello liveupdate")
	}
}

func selftestPreserveMultipleMemfds(e *env) {
	d := e.open()
	m1 := e.memfd("memfd-one")
	m2 := e.memfd("memfd-two")
	s := e.create(d, "preserve-multi-test")
	e.expect(s.PreserveFD(fdOf(m1), 0xAAAA), 0, "preserve memfd 1 under 0xAAAA")
	e.expect(s.PreserveFD(fdOf(m2), 0xBBBB), 0, "preserve memfd 2 under 0xBBBB")
	if got := e.contents(m1); got != "memfd-one" {
		e.Errorf("memfd 1 holds %q, want %q", got, "memfd-one")
	}
	if got := e.contents(m2); got != "memfd-two" {
		e.Errorf("memfd 2 holds %q, want %q", got, "memfd-two")
	}
}

func selftestPreserveComplexScenario(e *env) {
	d := e.open()
	data1, data2 := e.memfd("data for session one"), e.memfd("data for session two")
	empty1, empty2 := e.memfd(""), e.memfd("")
	s1 := e.create(d, "complex-session-1")
	s2 := e.create(d, "complex-session-2")
	e.expect(s1.PreserveFD(fdOf(data1), 0x1111), 0, "preserve data memfd in session 1 under 0x1111")
	e.expect(s1.PreserveFD(fdOf(empty1), 0x2222), 0, "preserve empty memfd in session 1 under 0x2222")
	e.expect(s2.PreserveFD(fdOf(data2), 0x3333), 0, "preserve data memfd in session 2 under 0x3333")
	e.expect(s2.PreserveFD(fdOf(empty2), 0x4444), 0, "preserve empty memfd in session 2 under 0x4444")
	for _, c := range []struct {
		f    *os.File
		want string
	}{{data1, "data for session one"}, {data2, "data for session two"}, {empty1, ""}, {empty2, ""}} {
		if got := e.contents(c.f); got != c.want {
			e.Errorf("memfd holds %q, want %q", got, c.want)
		}
	}
}

func selftestPreserveUnsupportedFD(e *env) {
	d := e.open()
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		e.Fatalf("open /dev/null: %v", err)
	}
	e.own(null)
	s := e.create(d, "unsupported-fd-test")
	e.expect(s.PreserveFD(fdOf(null), 0xDEAD), unix.ENOENT, "preserve /dev/null")
}

func selftestPreventDoublePreservation(e *env) {
	if !e.f.DoublePreserveBusy {
		e.Skip("target does not refuse double preservation (Features.DoublePreserveBusy)")
	}
	d := e.open()
	m := e.memfd("double")
	s1 := e.create(d, "double-preserve-session-1")
	s2 := e.create(d, "double-preserve-session-2")
	e.mustExpect(s1.PreserveFD(fdOf(m), 0x1111), 0, "preserve memfd in session 1")
	e.expect(s2.PreserveFD(fdOf(m), 0x2222), unix.EBUSY, "preserve the same memfd in session 2")
	e.expect(s1.PreserveFD(fdOf(m), 0x3333), unix.EBUSY, "preserve the same memfd in session 1 under another token")
}

func selftestNoNullTermination(e *env) {
	if !e.f.NameValidation {
		e.Skip("target does not validate session names (Features.NameValidation)")
	}
	d := e.open()
	b := e.sessionArgs(liveupdate.SizeofCreateSession, liveupdate.SizeofCreateSession, []byte(strings.Repeat("X", 64)))
	err := d.RawIoctl(liveupdate.CmdCreateSession.Request(), b)
	if err == nil {
		e.ownFD(int(int32(native.Uint32(b[4:]))))
	}
	e.expect(err, unix.EINVAL, "raw CREATE_SESSION with 64 x 'X' and no NUL")
}

func selftestEmptyName(e *env) {
	d := e.open()
	s, err := d.CreateSession("")
	if err == nil {
		e.track(s)
		e.Fatalf("CreateSession(\"\") succeeded")
	}
	if !errors.Is(err, liveupdate.ErrInvalidName) || !errors.Is(err, unix.EINVAL) {
		e.Errorf("CreateSession(\"\"): %v, want an error matching ErrInvalidName and EINVAL", err)
	}
	if !e.f.NameValidation {
		e.Skip("target does not validate session names (Features.NameValidation): the raw request is not checked")
	}
	b := e.sessionArgs(liveupdate.SizeofCreateSession, liveupdate.SizeofCreateSession, nil)
	err = d.RawIoctl(liveupdate.CmdCreateSession.Request(), b)
	if err == nil {
		e.ownFD(int(int32(native.Uint32(b[4:]))))
	}
	e.expect(err, unix.EINVAL, "raw CREATE_SESSION with an empty name")
}

func selftestGetSessionName(e *env) {
	getNameRoundTrip(e, "get-name-test-session")
}

func selftestGetSessionNameMaxLength(e *env) {
	getNameRoundTrip(e, strings.Repeat("A", liveupdate.MaxNameLen))
}

func getNameRoundTrip(e *env, name string) {
	if !e.f.GetName {
		e.Skip("target has no GET_NAME (Features.GetName)")
	}
	d := e.open()
	s := e.create(d, name)
	got, err := e.rawGetName(s)
	e.mustExpect(err, 0, "GET_NAME")
	if got != name {
		e.Errorf("GET_NAME = %q, want %q", got, name)
	}
}

func selftestManySessions(e *env) {
	const n = 2000
	if e.f.MaxSessions != 0 && e.f.MaxSessions < n {
		e.Skipf("target allows %d sessions (Features.MaxSessions), the test needs %d", e.f.MaxSessions, n)
	}
	// Room for the session fds and, for a fake kernel in this process,
	// its ends of them.
	e.needFDs(2 * n)
	d := e.open()
	sessions := make([]*liveupdate.Session, 0, n)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := range n {
		s, err := d.CreateSession(fmt.Sprintf("many-session-%d", i))
		if err != nil {
			e.Fatalf("create session %d of %d: %v", i+1, n, err)
		}
		sessions = append(sessions, s)
	}
	for i, s := range sessions {
		if err := s.Close(); err != nil {
			e.Errorf("close session %d: %v", i, err)
		}
	}
	sessions = nil
}

func selftestManyFiles(e *env) {
	const n = 500
	if e.f.MaxFiles != 0 && e.f.MaxFiles < n {
		e.Skipf("target allows %d files per session (Features.MaxFiles), the test needs %d", e.f.MaxFiles, n)
	}
	e.needFDs(2 * n)
	d := e.open()
	s := e.create(d, "preserve-many-files-test")
	for i := range n {
		fd, err := unix.MemfdCreate("many-file", unix.MFD_CLOEXEC)
		if err != nil {
			e.Fatalf("memfd_create %d: %v", i, err)
		}
		err = s.PreserveFD(fd, uint64(i))
		unix.Close(fd) // the session holds the file
		if err != nil {
			e.Fatalf("preserve memfd %d of %d: %v", i+1, n, err)
		}
	}
}
