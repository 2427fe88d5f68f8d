package conformance

import (
	"syscall"

	"github.com/go-luo/luo/liveupdate"
)

// Target is a LUO implementation under test.
type Target struct {
	// Name names the target in messages, such as "kernel" or "fake".
	Name string

	// Open opens the device of the current kernel. Only one Device may be
	// open at a time (the device is exclusive); Run closes each one it
	// opens.
	Open func() (*liveupdate.Device, error)

	// Kexec performs a live update: the current kernel serializes its
	// outgoing sessions and the next kernel boots with them as incoming
	// sessions; afterwards Open opens the new kernel, and the old kernel's
	// device and session handles fail with an error (they do not hang).
	// It is nil when the target cannot do that in-process (a real kernel):
	// the cases that need incoming sessions then skip, unless Split is
	// set. Kexec must be nil when Split is set.
	Kexec func() error

	// Split, when not nil, makes Run run one boot of a split run: a chain
	// of kernels linked by real kexecs, each boot running the test binary
	// again in a new process. Each case runs only its stage of this boot
	// (see Split and SplitFromEnv).
	Split *Split

	// Features says which kernel behaviour the target follows where
	// kernel generations differ.
	Features Features

	// Reboot, when not nil, cold-boots the target: nothing is handed
	// over, the next kernel starts with no incoming sessions, and the old
	// kernel's handles fail with an error. It brings back a target whose
	// kernel panicked at boot after a Kexec (package fake's Kernel.Reboot
	// does both); the case that provokes that panic skips without it.
	Reboot func() error

	// FailRetrieve, when not nil, makes the first retrieve of token in the
	// incoming session of that name fail with errno, as the file handler's
	// retrieve would (a fake kernel can inject that, as
	// fake.Kernel.FailRetrieve does; a real one cannot, so leave it nil).
	// Run calls it after a Kexec (in a split run: in the boot that
	// retrieves), before retrieving, and checks that the failure is
	// reported and, with Features.StickyRetrieveErrors, that it repeats;
	// without the hook that case skips. An error (an errno the target
	// cannot inject) fails the case.
	FailRetrieve func(session string, token uint64, errno syscall.Errno) error
}

// Features describes where a target's behaviour follows one kernel release
// or another. The zero value is a minimal Linux 6.19-like kernel with
// unknown limits; start from Linux7_2Features or Linux6_19Features instead
// of building one by hand.
type Features struct {
	// GetName: LIVEUPDATE_SESSION_GET_NAME (0x43) exists (Linux 7.2);
	// without it the session ioctl answers EINVAL, nr out of range.
	GetName bool

	// DirectionCheck: session ioctls check the session's direction
	// (Linux 7.2): PRESERVE_FD only on outgoing sessions, RETRIEVE_FD and
	// FINISH only on incoming ones, EINVAL otherwise. Without it (Linux
	// 6.19) the handler runs on the wrong kind of session; Run then checks
	// only what is safe to provoke.
	DirectionCheck bool

	// StickyRetrieveErrors: a RETRIEVE_FD whose file handler failed
	// returns the same errno on every later attempt instead of retrying
	// (Linux 7.2). A handler failure cannot be provoked from userspace, so
	// Run checks the sticky answer only through Target.FailRetrieve; with
	// or without this feature, a retrieve that failed for an unknown token
	// fails the same way again.
	StickyRetrieveErrors bool

	// NameValidation: CREATE_SESSION rejects an empty name and a name
	// field without a terminating NUL with EINVAL (Linux 7.2). Without it
	// those cases skip: what a Linux 6.19 kernel makes of such names is
	// not checked.
	NameValidation bool

	// DoublePreserveBusy: preserving a file that is already preserved, in
	// any session, fails with EBUSY (Linux 7.2). Without it those cases
	// skip.
	DoublePreserveBusy bool

	// PreserveByInode: a memfd is identified by its inode when checking
	// double preservation, so the same memfd opened again through
	// /proc/self/fd/N is EBUSY as well (memfd-v2's get_id, Linux 7.2).
	// False, as in memfd-v1 (Linux 6.19): only fds of the same open file
	// (dups, copies passed over sockets) are the same, and a second open
	// of the memfd can be preserved too (checked when DoublePreserveBusy).
	PreserveByInode bool

	// FinishReservedChecked: FINISH with a non-zero reserved field fails
	// with EINVAL, checked after the argument is copied in and before any
	// file is finished (Linux 7.2). False (Linux 6.19): reserved is not
	// looked at.
	FinishReservedChecked bool

	// SealsKept: a memfd's seals are preserved and set again on the
	// retrieved file, which is made with MFD_ALLOW_SEALING, so more seals
	// can be added (memfd-v2, Linux 7.2); seals outside F_SEAL_SEAL,
	// SHRINK, GROW, WRITE, FUTURE_WRITE and EXEC fail the preserve with
	// EOPNOTSUPP. False (memfd-v1, Linux 6.19): the retrieved file has no
	// seals and cannot be sealed (F_GET_SEALS is F_SEAL_SEAL).
	SealsKept bool

	// DuplicateCreateLeaksBlock: CREATE_SESSION of a name already used
	// grows the outgoing sessions' block set (51 sessions a block with 4
	// KiB pages) before it finds the duplicate, and does not shrink it
	// back on EEXIST (a bug of Linux 7.2, luo_session_insert). With 51·k
	// outgoing sessions of all processes (k from 1 to 9999; at 510,000
	// the create fails with ENOSPC instead) that leaves an empty block at
	// the end, and the next kernel panics at boot on it ("Block contains
	// invalid entry count: 0"); a later successful create, or a close of
	// any outgoing session, repairs it. The case that lets the kernel panic needs an
	// in-process Target.Kexec and Target.Reboot, as no real machine comes
	// back from it by itself; the repaired cases are safe on any kernel.
	DuplicateCreateLeaksBlock bool

	// SizeFreezeEnforced: while a memfd is preserved its size is frozen:
	// ftruncate, fallocate and writes past the end fail with EPERM (the
	// kernel's shmem_freeze). A fake kernel in userspace cannot do that;
	// with false Run logs what those calls do and checks that the memfd
	// can be resized once the session is gone.
	SizeFreezeEnforced bool

	// SizeChangeFailsKexec: a target that cannot freeze sizes
	// (SizeFreezeEnforced false) notices at Kexec that a preserved memfd
	// changed size and fails the Kexec with an error matching EPERM,
	// leaving every session as it was, as the kernel's reboot does when a
	// file cannot be frozen (package fake does this).
	SizeChangeFailsKexec bool

	// MaxSessions is how many outgoing sessions can exist at once;
	// creating one more fails with MaxSessionsErrno. 0: no limit Run can
	// reach (Linux 7.2's is 510,000), so the limit case skips.
	MaxSessions int

	// MaxSessionsErrno is the errno of a create past MaxSessions: ENOSPC
	// in Linux 7.2, ENOMEM in Linux 6.19.
	MaxSessionsErrno syscall.Errno

	// MaxFiles is how many files one session can hold; preserving one
	// more fails with ENOSPC. 0: no limit Run can reach (Linux 7.2's is
	// 630,000), so the limit case skips.
	MaxFiles int
}

// Linux7_2Features returns the features of Linux 7.2 (checked against
// Linux 7.2.13 running in a VM): GET_NAME (min_size 72), direction checks,
// sticky retrieve errors, name validation, EBUSY on double preservation of
// a memfd however it was opened, FINISH's reserved field checked, seals
// kept, frozen memfd sizes, the duplicate-create bug, and no limits Run can
// reach (ENOSPC past them).
func Linux7_2Features() Features {
	return Features{
		GetName:                   true,
		DirectionCheck:            true,
		StickyRetrieveErrors:      true,
		NameValidation:            true,
		DoublePreserveBusy:        true,
		PreserveByInode:           true,
		FinishReservedChecked:     true,
		SealsKept:                 true,
		DuplicateCreateLeaksBlock: true,
		SizeFreezeEnforced:        true,
		MaxSessionsErrno:          syscall.ENOSPC,
	}
}

// Linux6_19Features returns the features of Linux 6.19, the first merged
// LUO (read from source only): no GET_NAME, no direction or name checks,
// no EBUSY on double preservation, FINISH's reserved field not checked,
// seals not kept, frozen memfd sizes, at most 819 sessions (ENOMEM) and
// 128 files per session (ENOSPC).
func Linux6_19Features() Features {
	return Features{
		SizeFreezeEnforced: true,
		MaxSessions:        819,
		MaxSessionsErrno:   syscall.ENOMEM,
		MaxFiles:           128,
	}
}
