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

// Error is the error of every failed call. It names the operation and what
// it acted on, wraps the cause (a syscall.Errno from the kernel, or one of
// this package's sentinels), and, for the mistakes users make most, says
// what to do. errors.Is(err, unix.EEXIST) and similar tests see through it.
type Error struct {
	Op       string // "open", "create session", "retrieve session", "preserve", "retrieve", "finish", "get name", "close", "wrap session fd", "wrap device fd"
	Path     string // the device path, for Op "open"
	Session  string // the session's name, when known
	Token    uint64 // the file's token, when HasToken
	HasToken bool
	FD       int   // the file descriptor to preserve, for Op "preserve"
	Err      error // the cause
}

// Error says what failed, on what, why, and for common mistakes what to do.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("liveupdate: ")
	b.WriteString(e.Op)
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	switch e.Op {
	case opPreserve:
		b.WriteString(" fd ")
		b.WriteString(strconv.Itoa(e.FD))
		b.WriteString(" as")
	}
	if e.HasToken {
		b.WriteString(" token 0x")
		b.WriteString(strconv.FormatUint(e.Token, 16))
		switch e.Op {
		case opPreserve:
			b.WriteString(" in")
		case opRetrieve:
			b.WriteString(" from")
		}
	}
	if e.Session != "" {
		if !strings.HasSuffix(e.Op, "session") {
			b.WriteString(" session")
		}
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Session))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	var errno syscall.Errno
	if errors.As(e.Err, &errno) {
		if h := hint(e.Op, errno); h != "" {
			b.WriteString(" (")
			b.WriteString(h)
			b.WriteString(")")
		}
	}
	return b.String()
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
	var want string
	var errno syscall.Errno
	switch target {
	case ErrDeviceBusy:
		want, errno = opOpen, syscall.EBUSY
	case ErrAlreadyRetrieved:
		want, errno = opRetrieveSession, syscall.EINVAL
	case ErrAlreadyPreserved:
		want, errno = opPreserve, syscall.EBUSY
	default:
		return false
	}
	// errors.As finds only a syscall.Errno in the chain, the kernel's
	// answer; the errors of refusals made before the request (nameError,
	// badFDError) match their errno with Is and hold none.
	var got syscall.Errno
	return e.Op == want && errors.As(e.Err, &got) && got == errno
}

// Operation names used in Error.Op.
const (
	opOpen            = "open"
	opCreateSession   = "create session"
	opRetrieveSession = "retrieve session"
	opPreserve        = "preserve"
	opRetrieve        = "retrieve"
	opFinish          = "finish"
	opGetName         = "get name"
	opClose           = "close"
	opWrap            = "wrap session fd"
	opWrapDevice      = "wrap device fd"
)

// hint says, for the errnos users meet most, what the kernel meant and what
// to do about it.
func hint(op string, errno syscall.Errno) string {
	if errno == syscall.ENOTTY {
		return "the fd does not take LUO requests: it is not a LUO device or session, or this is a 32-bit program on a 64-bit kernel, where LUO has no compat_ioctl; build for the kernel's architecture"
	}
	switch op {
	case opOpen:
		switch errno {
		case syscall.EBUSY:
			return "another process has the device open; the kernel allows one opener at a time, so ask that agent for a session or stop it"
		case syscall.EIO:
			return "the kernel could not restore the state the previous kernel handed over; reboot to recover"
		case syscall.EACCES, syscall.EPERM:
			return "opening the device needs root or CAP_SYS_ADMIN, or a device node you may read and write"
		}
	case opCreateSession:
		switch errno {
		case syscall.EEXIST:
			return "an outgoing session of that name exists already"
		case syscall.ENOSPC, syscall.ENOMEM:
			return "the kernel's session limit is reached; close sessions you do not need"
		case syscall.EMFILE:
			return "this process has no free file descriptor; raise RLIMIT_NOFILE"
		}
	case opRetrieveSession:
		switch errno {
		case syscall.ENOENT:
			return "no session of that name came from the previous kernel, or it was already finished"
		case syscall.EINVAL:
			return "the session was already retrieved; use the fd from the first retrieve"
		}
	case opPreserve:
		switch errno {
		case syscall.EEXIST:
			return "the token is already used in this session"
		case syscall.EBUSY:
			return "the file is already preserved, in this or another session"
		case syscall.ENOENT:
			return "no handler can preserve this kind of file; memfds can be preserved"
		case syscall.EBADF:
			return "the file descriptor is not open"
		case syscall.EINVAL:
			return "files can be preserved only in outgoing sessions (created in this boot)"
		case syscall.ENOSPC:
			return "the session holds as many files as the kernel allows"
		}
	case opRetrieve:
		switch errno {
		case syscall.ENOENT:
			return "no file with that token, or the session was finished"
		case syscall.EINVAL:
			return "files can be retrieved only from incoming sessions (retrieved after the live update)"
		}
	case opFinish:
		switch errno {
		case syscall.EINVAL:
			return "only incoming sessions can be finished"
		case syscall.EBUSY:
			return "a file's handler refused to finish; nothing was finished"
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
