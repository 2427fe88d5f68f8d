package liveupdate

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotSupported reports that this system cannot do a live update: the
// device node does not exist (the kernel lacks CONFIG_LIVEUPDATE, KHO is
// disabled, or the boot parameter liveupdate=on is missing), or the
// operating system is not Linux.
var ErrNotSupported = errors.New("live update not supported")

// ErrInvalidName reports a session name the kernel would refuse: empty,
// longer than MaxNameLen bytes, or holding a NUL byte. Errors that match it
// also match syscall.EINVAL, the errno the kernel would have returned.
var ErrInvalidName = errors.New("invalid session name")

// ErrNotSession reports a file descriptor that is not a LUO session.
var ErrNotSession = errors.New("not a LUO session")

// ErrNotDevice reports a file descriptor given to NewDevice that is not a
// LUO device: neither the kernel's (a misc character device) nor a fake
// kernel's. Errors that match it also match syscall.ENOTTY, the kernel's
// answer to a LUO request on another file.
var ErrNotDevice = errors.New("not a LUO device")

// ErrClosed reports a call on a Device or Session after Close. It matches
// os.ErrClosed (fs.ErrClosed), and only that: other errors with the same
// text do not match.
var ErrClosed error = errClosed{}

type errClosed struct{}

func (errClosed) Error() string { return "file already closed" }

// Is makes ErrClosed match fs.ErrClosed, which os.ErrClosed is.
func (errClosed) Is(target error) bool { return target == fs.ErrClosed }

// Op names the operation an Error reports. Its values are the constants
// below.
type Op string

// The operations of this package, as Error.Op holds them.
const (
	OpOpen            Op = "open"             // Open
	OpWrapDevice      Op = "wrap device fd"   // NewDevice
	OpCreateSession   Op = "create session"   // Device.CreateSession
	OpRetrieveSession Op = "retrieve session" // Device.RetrieveSession
	OpWrapSession     Op = "wrap session fd"  // NewSession
	OpPreserve        Op = "preserve"         // Session.Preserve, Session.PreserveFD
	OpRetrieve        Op = "retrieve"         // Session.Retrieve
	OpFinish          Op = "finish"           // Session.Finish
	OpGetName         Op = "get name"         // Session.Name
	OpClose           Op = "close"            // Device.Close, Session.Close
)

// Error is the error of every failed call of Device and Session, and of
// Open, NewDevice and NewSession. It names the operation and what it acted
// on, wraps the cause (a syscall.Errno from the kernel, or one of this
// package's sentinels), and, when the cause is the kernel's bare errno for
// a mistake users make often, adds a short hint. errors.Is(err,
// unix.EEXIST) and similar tests see through it.
type Error struct {
	Op      Op
	Path    string // the device path, for OpOpen and a Device's OpClose
	Session string // the session's name, when known
	Token   uint64 // the file's token, for OpPreserve and OpRetrieve
	FD      int    // the file descriptor to preserve, for OpPreserve
	Err     error  // the cause
}

// Error says what failed, on what and why, such as
// `liveupdate: preserve fd 7 as token 99 (0x63) in session "vm-1": file
// exists (the token is already used in this session)`. Tokens print in
// decimal, and also in hex when above 9.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("liveupdate: ")
	b.WriteString(string(e.Op))
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	switch e.Op {
	case OpPreserve:
		b.WriteString(" fd ")
		b.WriteString(strconv.Itoa(e.FD))
		b.WriteString(" as token ")
		b.WriteString(tokenString(e.Token))
		b.WriteString(" in")
	case OpRetrieve:
		b.WriteString(" token ")
		b.WriteString(tokenString(e.Token))
		b.WriteString(" from")
	}
	// An invalid name's error holds the name already.
	var ne *nameError
	if e.Session != "" && !errors.As(e.Err, &ne) {
		if !strings.HasSuffix(string(e.Op), "session") {
			b.WriteString(" session")
		}
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Session))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	// Only the kernel's bare errno gets a hint: a cause with a message of
	// its own (a fake kernel's, a refusal of this package) explains
	// itself.
	if errno, ok := e.Err.(syscall.Errno); ok {
		if h := hint(e.Op, errno); h != "" {
			b.WriteString(" (")
			b.WriteString(h)
			b.WriteString(")")
		}
	}
	return b.String()
}

// tokenString formats a token in decimal, with its hex value after it when
// the two differ: "99 (0x63)", "7".
func tokenString(t uint64) string {
	d := strconv.FormatUint(t, 10)
	if t < 10 {
		return d
	}
	return d + " (0x" + strconv.FormatUint(t, 16) + ")"
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sentinels for the cases agents branch on. Each matches an *Error of its
// operation whose errno is the kernel's answer for that case, so a test of
// the errno sees the same errors (errors.Is(err, unix.EBUSY) is true
// wherever errors.Is(err, ErrDeviceBusy) is). They match only an errno the
// kernel (or a fake kernel) returned: a refusal before the request is
// sent, such as an invalid name (which matches EINVAL and ErrInvalidName),
// matches none of them. For the errnos that carry
// one meaning, use the os sentinels: errors.Is(err, os.ErrExist) for EEXIST,
// errors.Is(err, os.ErrNotExist) for ENOENT.
var (
	// ErrDeviceBusy: Open found the device held by another opener (EBUSY).
	ErrDeviceBusy = errors.New("device busy")
	// ErrAlreadyRetrieved: RetrieveSession of a session retrieved before
	// and still open (EINVAL).
	ErrAlreadyRetrieved = errors.New("session already retrieved")
	// ErrAlreadyPreserved: Preserve of a file preserved already, in this
	// or another session (EBUSY).
	ErrAlreadyPreserved = errors.New("file already preserved")
)

// Is matches the sentinels above.
func (e *Error) Is(target error) bool {
	var want Op
	var errno syscall.Errno
	switch target {
	case ErrDeviceBusy:
		want, errno = OpOpen, syscall.EBUSY
	case ErrAlreadyRetrieved:
		want, errno = OpRetrieveSession, syscall.EINVAL
	case ErrAlreadyPreserved:
		want, errno = OpPreserve, syscall.EBUSY
	default:
		return false
	}
	// errors.As finds only a syscall.Errno in the chain, the kernel's
	// answer; the errors of refusals made before the request (nameError,
	// badFDError) match their errno with Is and hold none.
	var got syscall.Errno
	return e.Op == want && errors.As(e.Err, &got) && got == errno
}

// hint says in a few words what the kernel meant by an errno users meet
// often. Setup advice is left to 'luoctl check' and the documentation.
func hint(op Op, errno syscall.Errno) string {
	if errno == syscall.ENOTTY {
		return "not a LUO fd, or a 32-bit program on a 64-bit kernel"
	}
	switch op {
	case OpOpen:
		switch errno {
		case syscall.EBUSY:
			return "the device is open already, in this process or another; one opener at a time"
		case syscall.EIO:
			return "the previous kernel's state could not be restored; reboot to recover"
		case syscall.EACCES, syscall.EPERM:
			return "the device needs root or a node you may read and write"
		}
	case OpCreateSession:
		switch errno {
		case syscall.EEXIST:
			return "an outgoing session of that name exists"
		case syscall.ENOSPC:
			return "the kernel's session table is full"
		case syscall.EMFILE:
			return "no free file descriptor; raise RLIMIT_NOFILE"
		}
	case OpRetrieveSession:
		switch errno {
		case syscall.ENOENT:
			return "no such incoming session, or it was finished"
		case syscall.EINVAL:
			return "retrieved already; use the first fd"
		}
	case OpPreserve:
		switch errno {
		case syscall.EEXIST:
			return "the token is already used in this session"
		case syscall.EBUSY:
			return "the file is already preserved, in this or another session"
		case syscall.ENOENT:
			return "no handler preserves this kind of file; memfds can be preserved"
		case syscall.EBADF:
			return "the fd is not open"
		case syscall.EINVAL:
			return "only outgoing sessions take files"
		}
	case OpRetrieve:
		switch errno {
		case syscall.ENOENT:
			return "no file with that token, or the session was finished"
		case syscall.EINVAL:
			return "only incoming sessions give files back"
		}
	case OpFinish:
		switch errno {
		case syscall.EINVAL:
			return "only incoming sessions can be finished"
		case syscall.EBUSY:
			return "a file's handler refused; nothing was finished"
		}
	}
	return ""
}

// nameError is the error of a name that fails ValidateName.
type nameError struct {
	name   string
	reason string
}

func (e *nameError) Error() string {
	return "invalid session name " + strconv.Quote(e.name) + ": " + e.reason
}

// Is makes a nameError match ErrInvalidName and EINVAL.
func (e *nameError) Is(target error) bool {
	return target == ErrInvalidName || target == syscall.EINVAL
}

// ValidateName reports whether the kernel accepts name as a session name:
// 1 to MaxNameLen bytes, none of them NUL. The error matches ErrInvalidName
// and syscall.EINVAL.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &nameError{name, "empty"}
	case len(name) > MaxNameLen:
		return &nameError{name, "longer than " + strconv.Itoa(MaxNameLen) + " bytes (" + strconv.Itoa(len(name)) + ")"}
	case strings.IndexByte(name, 0) >= 0:
		return &nameError{name, "holds a NUL byte at " + strconv.Itoa(strings.IndexByte(name, 0))}
	}
	return nil
}

// badFDError is the error of a negative file descriptor given to Preserve.
type badFDError struct{ fd int }

func (e badFDError) Error() string { return "negative file descriptor " + strconv.Itoa(e.fd) }

// Is makes a badFDError match EBADF, which the kernel would have returned.
func (e badFDError) Is(target error) bool { return target == syscall.EBADF }
