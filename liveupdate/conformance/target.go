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

	// FailRetrieve, when not nil, makes the first retrieve of token in the
	// incoming session of that name fail with errno, as the file handler's
	// retrieve would (a fake kernel can inject that, as
	// fake.Kernel.FailRetrieve does; a real one cannot, so leave it nil).
	// Run calls it after a Kexec (in a split run: in the boot that
	// retrieves), before retrieving, and checks that the failure is
	// reported and, with Features.StickyRetrieveErrors, that it repeats;
	// without the hook that case skips.
	FailRetrieve func(session string, token uint64, errno syscall.Errno)
}

// Features describes where a target's behaviour follows one kernel
// generation or another (see kernel-abi §0: G1 first merged, G2 fixes, G3
// newest). The zero value is a minimal G1-like kernel with unknown limits;
// start from NewestFeatures or FirstMergedFeatures instead of building one
// by hand.
type Features struct {
	// GetName: LIVEUPDATE_SESSION_GET_NAME (0x43) exists (newest
	// kernels); without it the session ioctl answers EINVAL, nr out of
	// range.
	GetName bool

	// SeedGetName: GET_NAME is described in the kernel's ops table with
	// the retrieve_fd struct (the typo of some trees, kernel-abi §0): its
	// min_size is 16 and bytes 16..71 of a 72-byte request are trailing
	// input that must be zero (E2BIG). False means torvalds' layout:
	// min_size 72, the name area is output only.
	SeedGetName bool

	// DirectionCheck: session ioctls check the session's direction
	// (G2+): PRESERVE_FD only on outgoing sessions, RETRIEVE_FD and
	// FINISH only on incoming ones, EINVAL otherwise. Without it (G1) the
	// handler runs on the wrong kind of session; Run then checks only
	// what is safe to provoke.
	DirectionCheck bool

	// StickyRetrieveErrors: a RETRIEVE_FD whose file handler failed
	// returns the same errno on every later attempt instead of retrying
	// (G2+). A handler failure cannot be provoked from userspace, so Run
	// checks the sticky answer only through Target.FailRetrieve; with or without
	// this feature, a retrieve that failed for an unknown token fails the
	// same way again.
	StickyRetrieveErrors bool

	// NameValidation: CREATE_SESSION rejects an empty name and a name
	// field without a terminating NUL with EINVAL (G2+). Without it those
	// cases skip: what a G1 kernel makes of such names is not checked.
	NameValidation bool

	// DoublePreserveBusy: preserving a file that is already preserved, in
	// any session, fails with EBUSY (G2+). Without it those cases skip.
	DoublePreserveBusy bool

	// PreserveByInode: a memfd is identified by its inode when checking
	// double preservation, so the same memfd opened again through
	// /proc/self/fd/N is EBUSY as well (memfd-v2 handlers with get_id, in
	// linux-mm). False, as in torvalds' memfd-v1: only fds of the same open
	// file (dups, copies passed over sockets) are the same, and a second
	// open of the memfd can be preserved too (checked when
	// DoublePreserveBusy).
	PreserveByInode bool

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
	// reach (the newest kernel's is about 510,000), so the limit case
	// skips.
	MaxSessions int

	// MaxSessionsErrno is the errno of a create past MaxSessions: ENOSPC
	// in the newest kernels, ENOMEM in the first merged one.
	MaxSessionsErrno syscall.Errno

	// MaxFiles is how many files one session can hold; preserving one
	// more fails with ENOSPC. 0: no limit Run can reach, so the limit case
	// skips.
	MaxFiles int
}

// NewestFeatures returns the features of the newest kernel (torvalds
// b2128290/637315cb, kernel-abi G3): GET_NAME with torvalds' layout,
// direction checks, sticky retrieve errors, name validation, EBUSY on
// double preservation of the same open file (memfd-v1), frozen memfd sizes,
// and no limits Run can reach.
func NewestFeatures() Features {
	return Features{
		GetName:              true,
		DirectionCheck:       true,
		StickyRetrieveErrors: true,
		NameValidation:       true,
		DoublePreserveBusy:   true,
		SizeFreezeEnforced:   true,
		MaxSessionsErrno:     syscall.ENOSPC,
	}
}

// FirstMergedFeatures returns the features of the first merged LUO
// (kernel-abi G1, 6.19-era): no GET_NAME, no direction or name checks, no
// EBUSY on double preservation, at most 819 sessions (ENOMEM) and 128 files
// per session (ENOSPC).
func FirstMergedFeatures() Features {
	return Features{
		SizeFreezeEnforced: true,
		MaxSessions:        819,
		MaxSessionsErrno:   syscall.ENOMEM,
		MaxFiles:           128,
	}
}
