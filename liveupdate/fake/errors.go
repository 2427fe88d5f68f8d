package fake

import (
	"fmt"
	"strconv"
	"syscall"

	"github.com/go-luo/luo/liveupdate"
)

// ErrKernelClosed is the error of Open, Kexec, Reboot and a second Close
// after Kernel.Close. It matches liveupdate.ErrClosed (and so
// os.ErrClosed).
var ErrKernelClosed error = kernelClosed{}

type kernelClosed struct{}

func (kernelClosed) Error() string { return "fake: the kernel was closed (Kernel.Close)" }

func (kernelClosed) Unwrap() error { return liveupdate.ErrClosed }

// FrozenSizeError reports a preserved memfd whose size changed before the
// live update, which the kernel would have refused with EPERM.
type FrozenSizeError struct {
	Token     uint64
	Preserved int64 // size when preserved
	Now       int64 // size at the live update
}

// Error names the file, both sizes and what the kernel does.
func (e *FrozenSizeError) Error() string {
	return fmt.Sprintf("fake: memfd preserved as token %s changed size from %d to %d; the kernel refuses resizing a preserved memfd (EPERM)", tokenString(e.Token), e.Preserved, e.Now)
}

// Unwrap returns EPERM, the kernel's answer to the change.
func (e *FrozenSizeError) Unwrap() error { return syscall.EPERM }

// FrozenPagesError reports a preserved memfd whose pages were released
// while it was preserved (a hole punched, or a truncate undone by growing
// or rewriting it to the same size), which the kernel would have refused
// with EPERM.
type FrozenPagesError struct {
	Token uint64
	// Offset is the byte offset of the first page found released, or -1
	// when only the file's block count shows that some were.
	Offset int64
}

// Error names the file, the page and what the kernel does.
func (e *FrozenPagesError) Error() string {
	where := "some of its pages were"
	if e.Offset >= 0 {
		where = fmt.Sprintf("its page at offset %d was", e.Offset)
	}
	return fmt.Sprintf("fake: memfd preserved as token %s: %s released (a hole punched, or truncated and regrown); the kernel refuses both on a preserved memfd (EPERM)", tokenString(e.Token), where)
}

// Unwrap returns EPERM, the kernel's answer to the change.
func (e *FrozenPagesError) Unwrap() error { return syscall.EPERM }

// PanicError reports a handed-over state that the kernel checks in its
// early initcall and panics on (luo_core.c: liveupdate_early_init calls
// luo_restore_fail, which is panic): a luo_ser of another ABI version
// (compatible string) or a session block chain kho_block_set_restore
// refuses (a cycle, a block count of 0 or above 51, more than 10,000
// blocks). Linux 7.2.13 logs, for instance, "luo: Block contains invalid
// entry count: 0" and panics with "The incoming tree failed to initialize
// properly [-22], disabling live update". A machine whose kernel panics
// does not come up: New fails with a PanicError for such an image, and
// Kexec for one it writes itself.
type PanicError struct {
	Err error // what the kernel's check found, a *kho.DecodeError
}

// Error says that the kernel panics at boot, and why.
func (e *PanicError) Error() string {
	return "fake: the next kernel panics at boot (the machine does not come up): " + e.Err.Error()
}

// Unwrap returns the decoding error.
func (e *PanicError) Unwrap() error { return e.Err }

// KexecError is the error of a Kexec that failed: the kernel was closed or
// is down (a *PanicError), a file's or session's freeze failed (every
// session then stays as it was), the image could not be written, or the
// next kernel panicked at boot on it.
type KexecError struct {
	// Session is the session whose freeze failed, or "" when the failure
	// was not one session's.
	Session string
	// File is true when the freeze of Session's file preserved under
	// Token failed (its handler's Freeze, such as a *FrozenSizeError), and
	// false when the session failed as a whole (FailFreeze).
	File  bool
	Token uint64
	Err   error // the cause
}

// Error says what failed, naming the session and file, such as `fake:
// kexec: freeze session "vm" token 99 (0x63): operation not permitted`.
func (e *KexecError) Error() string {
	s := "fake: kexec: "
	if e.Session != "" {
		s += "freeze session " + strconv.Quote(e.Session)
		if e.File {
			s += " token " + tokenString(e.Token)
		}
		s += ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns the cause.
func (e *KexecError) Unwrap() error { return e.Err }

// tokenString formats a token in decimal, with its hex value after it when
// the two differ, as package liveupdate's errors do: "99 (0x63)", "7".
func tokenString(t uint64) string {
	d := strconv.FormatUint(t, 10)
	if t < 10 {
		return d
	}
	return d + " (0x" + strconv.FormatUint(t, 16) + ")"
}

// UnmatchedFaultError reports a fault armed by a Fail method that names a
// session or file nothing will match, so it could never fire and a test
// expecting its errno would pass or fail for another reason. FailRetrieve
// returns one for a token the running kernel's incoming session of that
// name does not hold; Kexec returns one, before freezing anything, for a
// FailFreeze naming no outgoing session or a FailRetrieve naming a
// session and token the live update does not hand over, and disarms that
// fault. It matches no errno.
type UnmatchedFaultError struct {
	Fault  string // the call that armed it, such as `FailFreeze("x", EIO)`
	Reason string // what it does not match
}

// Error names the fault and what it does not match.
func (e *UnmatchedFaultError) Error() string {
	return "fake: " + e.Fault + " can never fire: " + e.Reason
}

// UnfiredFaultsError is CheckFaults' report of armed faults that have not
// fired.
type UnfiredFaultsError struct {
	Faults []string // the calls that armed them, sorted
}

// Error lists the faults.
func (e *UnfiredFaultsError) Error() string {
	s := "fake: armed faults that did not fire:"
	for _, f := range e.Faults {
		s += " " + f + ";"
	}
	return s[:len(s)-1]
}
