//go:build linux

package liveupdate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{
			&Error{Op: OpOpen, Path: "/dev/liveupdate", Err: unix.EBUSY},
			"liveupdate: open /dev/liveupdate: device or resource busy (the device is open already, in this process or another; one opener at a time)",
		},
		{
			&Error{Op: OpPreserve, Session: "vm-1", FD: 7, Token: 0xbeef, Err: unix.EEXIST},
			`liveupdate: preserve fd 7 as token 48879 (0xbeef) in session "vm-1": file exists (the token is already used in this session)`,
		},
		{
			&Error{Op: OpRetrieve, Session: "vm-1", Token: 0xDEADBEEF00000001, Err: unix.ENOENT},
			`liveupdate: retrieve token 16045690981097406465 (0xdeadbeef00000001) from session "vm-1": no such file or directory (no file with that token, or the session was finished)`,
		},
		{
			&Error{Op: OpRetrieve, Session: "s", Token: 0, Err: unix.EIO},
			`liveupdate: retrieve token 0 from session "s": input/output error`,
		},
		{
			&Error{Op: OpRetrieve, Session: "s", Token: 99, Err: unix.EIO},
			`liveupdate: retrieve token 99 (0x63) from session "s": input/output error`,
		},
		{
			&Error{Op: OpCreateSession, Session: "vm-1", Err: unix.EEXIST},
			`liveupdate: create session "vm-1": file exists (an outgoing session of that name exists)`,
		},
		{
			// A cause with a message of its own gets no hint.
			&Error{Op: OpRetrieveSession, Session: "old", Err: fmt.Errorf("wrapped: %w", unix.EINVAL)},
			`liveupdate: retrieve session "old": wrapped: invalid argument`,
		},
		{
			&Error{Op: OpFinish, Session: "s\n", Err: ErrClosed},
			`liveupdate: finish session "s\n": file already closed`,
		},
		{
			&Error{Op: OpGetName, Session: "s", Err: fmt.Errorf("wrapped: %w", unix.EINVAL)},
			`liveupdate: get name session "s": wrapped: invalid argument`,
		},
		{
			// An invalid name is printed once, by its own error.
			&Error{Op: OpCreateSession, Session: "a\x00b", Err: ValidateName("a\x00b")},
			`liveupdate: create session: invalid session name "a\x00b": holds a NUL byte at 1`,
		},
		{
			&Error{Op: OpWrapDevice, Err: &notDeviceError{"a socket"}},
			`liveupdate: wrap device fd: not a LUO device (it is a socket)`,
		},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() =\n %q\nwant\n %q", got, tc.want)
		}
	}
}

// TestHintsShort keeps every hint to a few words: one short clause, no
// setup advice.
func TestHintsShort(t *testing.T) {
	ops := []Op{OpOpen, OpWrapDevice, OpCreateSession, OpRetrieveSession, OpWrapSession, OpPreserve, OpRetrieve, OpFinish, OpGetName, OpClose}
	n := 0
	for _, op := range ops {
		for errno := syscall.Errno(1); errno < 134; errno++ {
			h := hint(op, errno)
			if h == "" {
				continue
			}
			n++
			if len(h) > 80 {
				t.Errorf("%s %v: hint of %d bytes: %q", op, errno, len(h), h)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d hints found", n)
	}
	if got := (&notSupportedError{unix.ENOENT}).Error(); len(got) > 100 || !strings.Contains(got, "luoctl check") {
		t.Errorf("not-supported error of %d bytes: %q", len(got), got)
	}
}

// TestErrorNames checks the parts every error names, whatever the wording.
func TestErrorNames(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want []string
	}{
		{&Error{Op: OpCreateSession, Session: "vm-1", Err: unix.EEXIST}, []string{"create session", `"vm-1"`, "file exists"}},
		{&Error{Op: OpRetrieveSession, Session: "old", Err: unix.EINVAL}, []string{"retrieve session", `"old"`, "retrieved already"}},
		{&Error{Op: OpPreserve, Session: "a", FD: 12, Token: 0xABC, Err: unix.EBADF}, []string{"preserve", "fd 12", "2748 (0xabc)", `"a"`}},
		{&Error{Op: OpPreserve, Session: "a", FD: -3, Token: 1, Err: badFDError{-3}}, []string{"fd -3", "token 1 in", "negative file descriptor -3"}},
		{&Error{Op: OpClose, Session: "b", Err: ErrClosed}, []string{"close", `"b"`, "already closed"}},
		{&Error{Op: OpWrapSession, Err: &notSessionError{"/dev/null"}}, []string{"wrap session fd", "not a LUO session", "/dev/null"}},
	} {
		got := tc.err.Error()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q does not contain %q", got, w)
			}
		}
	}
}

func TestErrorHints(t *testing.T) {
	for _, tc := range []struct {
		op    Op
		errno syscall.Errno
		hint  string // "" when none is expected
	}{
		{OpOpen, unix.EBUSY, "in this process or another"},
		{OpOpen, unix.EIO, "reboot to recover"},
		{OpOpen, unix.EACCES, "needs root"},
		{OpOpen, unix.EPERM, "needs root"},
		{OpOpen, unix.ENOENT, ""},
		{OpCreateSession, unix.EEXIST, "an outgoing session of that name exists"},
		{OpCreateSession, unix.ENOSPC, "session table is full"},
		{OpCreateSession, unix.EMFILE, "RLIMIT_NOFILE"},
		{OpRetrieveSession, unix.ENOENT, "no such incoming session"},
		{OpPreserve, unix.EBUSY, "already preserved"},
		{OpPreserve, unix.ENOENT, "memfds can be preserved"},
		{OpPreserve, unix.EINVAL, "only outgoing sessions take files"},
		{OpPreserve, unix.ENOSPC, ""},
		{OpRetrieve, unix.EINVAL, "only incoming sessions give files back"},
		{OpFinish, unix.EINVAL, "only incoming sessions can be finished"},
		{OpFinish, unix.EBUSY, "nothing was finished"},
		{OpFinish, unix.ENOENT, ""},
		{OpGetName, unix.EINVAL, ""},
		{OpClose, unix.EBADF, ""},
	} {
		got := (&Error{Op: tc.op, Session: "s", Err: tc.errno}).Error()
		if tc.hint == "" {
			if strings.Contains(got, "(") {
				t.Errorf("%s %v: unexpected hint in %q", tc.op, tc.errno, got)
			}
			continue
		}
		if !strings.Contains(got, " (") || !strings.Contains(got, tc.hint) || !strings.HasSuffix(got, ")") {
			t.Errorf("%s %v: %q lacks the hint %q", tc.op, tc.errno, got, tc.hint)
		}
	}
	// Not an errno: no hint, even for an op that has hints.
	if got := (&Error{Op: OpOpen, Path: "p", Err: ErrClosed}).Error(); got != "liveupdate: open p: file already closed" {
		t.Errorf("got %q", got)
	}
}

func TestErrorIs(t *testing.T) {
	exist := error(&Error{Op: OpCreateSession, Session: "s", Err: unix.EEXIST})
	notExist := error(&Error{Op: OpRetrieveSession, Session: "s", Err: unix.ENOENT})
	closed := error(&Error{Op: OpClose, Session: "s", Err: ErrClosed})
	for _, tc := range []struct {
		err    error
		target error
		want   bool
	}{
		{exist, unix.EEXIST, true},
		{exist, syscall.EEXIST, true},
		{exist, os.ErrExist, true},
		{exist, fs.ErrExist, true},
		{exist, os.ErrNotExist, false},
		{exist, unix.ENOENT, false},
		{notExist, os.ErrNotExist, true},
		{notExist, unix.ENOENT, true},
		{notExist, os.ErrExist, false},
		{notExist, ErrNotSupported, false},
		{closed, ErrClosed, true},
		{closed, os.ErrClosed, true},
		{closed, fs.ErrClosed, true},
		{closed, os.ErrNotExist, false},
		{ErrClosed, os.ErrClosed, true},
		{ErrClosed, ErrNotSupported, false},
		{ErrClosed, unix.EBADF, false},
		{fmt.Errorf("outer: %w", exist), os.ErrExist, true},
		{&Error{Op: OpPreserve, Err: badFDError{-1}}, unix.EBADF, true},
		{&Error{Op: OpPreserve, Err: badFDError{-1}}, unix.EINVAL, false},
		{&Error{Op: OpWrapSession, Err: &notSessionError{"x"}}, ErrNotSession, true},
		{&Error{Op: OpWrapSession, Err: &notSessionError{"x"}}, unix.EINVAL, true},
	} {
		if got := errors.Is(tc.err, tc.target); got != tc.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
		}
	}
}

func TestErrorAs(t *testing.T) {
	err := fmt.Errorf("agent: %w", &Error{Op: OpFinish, Session: "vm", Err: unix.EBUSY})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false", err)
	}
	if e.Op != "finish" || e.Session != "vm" || e.Err != unix.EBUSY {
		t.Errorf("got %+v", e)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno != unix.EBUSY {
		t.Errorf("errors.As(errno) = %v", errno)
	}
	if e.Unwrap() != unix.EBUSY {
		t.Errorf("Unwrap = %v", e.Unwrap())
	}
}

func TestOpenMissing(t *testing.T) {
	const path = "/nonexistent/liveupdate"
	d, err := Open(path)
	if d != nil {
		t.Fatalf("Open(%s) returned a device", path)
	}
	for _, target := range []error{ErrNotSupported, unix.ENOENT, os.ErrNotExist} {
		if !errors.Is(err, target) {
			t.Errorf("Open(%s) = %v, does not match %v", path, err, target)
		}
	}
	if errors.Is(err, unix.EBUSY) || errors.Is(err, ErrClosed) {
		t.Errorf("Open(%s) = %v matches unrelated errors", path, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "open" || e.Path != path {
		t.Fatalf("Open(%s) = %#v, want *Error{Op: open, Path: %s}", path, err, path)
	}
	msg := err.Error()
	for _, w := range []string{"not supported", "luoctl check", path, "no such file or directory"} {
		if !strings.Contains(msg, w) {
			t.Errorf("Open error %q does not mention %q", msg, w)
		}
	}
}

func TestOpenNotADevice(t *testing.T) {
	// A directory cannot be opened read-write: EISDIR, not "not supported".
	_, err := Open(t.TempDir())
	if !errors.Is(err, unix.EISDIR) || errors.Is(err, ErrNotSupported) {
		t.Errorf("Open(dir) = %v, want EISDIR and not ErrNotSupported", err)
	}
}

func TestOpenDevNull(t *testing.T) {
	d, err := Open(os.DevNull)
	if err != nil {
		t.Fatalf("Open(%s): %v", os.DevNull, err)
	}
	if d.b != backendKernel || d.path != os.DevNull {
		t.Errorf("Open(%s): backend %d, path %q", os.DevNull, d.b, d.path)
	}
	fd := d.Fd()
	if fd < 0 {
		t.Fatalf("Fd() = %d", fd)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("device fd flags %#x, %v: want close-on-exec", fl, err)
	}
	// /dev/null answers ENOTTY; under qemu-user, which answers unknown
	// ioctls itself, ENOSYS.
	want := unix.ENOTTY
	if ioctlErr(fd, CmdGetName.Request()) == unix.ENOSYS {
		t.Log("qemu-user: ioctls answer ENOSYS")
		want = unix.ENOSYS
	}
	arg := make([]byte, SizeofGetName)
	binary.NativeEndian.PutUint32(arg, SizeofGetName)
	if err := d.RawIoctl(CmdGetName.Request(), arg); err != want {
		t.Errorf("RawIoctl(GET_NAME) on /dev/null = %v, want bare %v", err, want)
	}
	_, err = d.CreateSession("x")
	if !errors.Is(err, want) {
		t.Errorf("CreateSession on /dev/null = %v, want %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "create session" || e.Session != "x" {
		t.Errorf("CreateSession error = %#v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d.Fd() != -1 {
		t.Errorf("Fd() after Close = %d", d.Fd())
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("fd %d still open after Close (%v)", fd, err)
	}
	err = d.Close()
	if !errors.Is(err, ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if !errors.As(err, &e) || e.Op != "close" || e.Path != os.DevNull {
		t.Errorf("second Close error = %#v", err)
	}
}
