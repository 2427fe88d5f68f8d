//go:build linux

package fake

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// faults are the failures a test asked for, to exercise an agent's error
// paths.
type faults struct {
	mu           sync.Mutex
	preserveIn   int // fail the preserve when this many more have reached the handler; 0: none
	preserveErr  unix.Errno
	freezeErr    map[string]unix.Errno
	retrieveErr  map[retrieveKey]unix.Errno
	restoreErr   unix.Errno
	restoreArmed bool
}

type retrieveKey struct {
	session string
	token   uint64
}

// maxErrno is the largest errno the kernel returns (MAX_ERRNO, 4095).
const maxErrno = 4095

// checkFault refuses what is no fault: errno 0, which would make the
// step report success having done nothing, and values past MAX_ERRNO,
// which no kernel returns.
func checkFault(errno unix.Errno) error {
	if errno == 0 || errno > maxErrno {
		return &faultError{errno}
	}
	return nil
}

// faultError is the error of a Fail method given no errno.
type faultError struct{ errno unix.Errno }

func (e *faultError) Error() string {
	return fmt.Sprintf("fake: errno %d is not a fault: give an errno from 1 to %d, such as unix.EIO", uintptr(e.errno), maxErrno)
}

// Is makes a faultError match EINVAL.
func (e *faultError) Is(target error) bool { return target == unix.EINVAL }

// FailPreserve makes the nth preserve from now (1 for the next) that
// passes the kernel's checks fail with errno, as its handler's preserve
// would; n of 0 disarms it. It refuses (an error matching EINVAL, nothing
// armed) a negative n and, for n > 0, an errno of 0 or past 4095, which
// would not make the preserve fail.
func (k *Kernel) FailPreserve(n int, errno unix.Errno) error {
	if n < 0 {
		return fmt.Errorf("fake: FailPreserve(%d): n counts preserves from now, 1 for the next: %w", n, unix.EINVAL)
	}
	if n > 0 {
		if err := checkFault(errno); err != nil {
			return err
		}
	}
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	k.faults.preserveIn, k.faults.preserveErr = n, errno
	return nil
}

// FailFreeze makes the next live update fail with errno when it freezes
// the session of that name, as a handler's freeze would: Kexec returns the
// error and every session stays as it was. It refuses an errno of 0 or
// past 4095 (an error matching EINVAL, nothing armed).
func (k *Kernel) FailFreeze(session string, errno unix.Errno) error {
	if err := checkFault(errno); err != nil {
		return err
	}
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	if k.faults.freezeErr == nil {
		k.faults.freezeErr = map[string]unix.Errno{}
	}
	k.faults.freezeErr[session] = errno
	return nil
}

// FailRetrieve makes the first retrieve of token in the incoming session
// of that name fail with errno, as its handler's retrieve would; like the
// kernel, later retrieves fail the same way. It refuses an errno of 0 or
// past 4095 (an error matching EINVAL, nothing armed).
func (k *Kernel) FailRetrieve(session string, token uint64, errno unix.Errno) error {
	if err := checkFault(errno); err != nil {
		return err
	}
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	if k.faults.retrieveErr == nil {
		k.faults.retrieveErr = map[retrieveKey]unix.Errno{}
	}
	k.faults.retrieveErr[retrieveKey{session, token}] = errno
	return nil
}

// FailRestore makes the next kernel's restore of the handed-over state
// fail with errno, as a decoding error would: its first open, and every
// later one, fails with EIO. It refuses an errno of 0 or past 4095 (an
// error matching EINVAL, nothing armed).
func (k *Kernel) FailRestore(errno unix.Errno) error {
	if err := checkFault(errno); err != nil {
		return err
	}
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	k.faults.restoreErr, k.faults.restoreArmed = errno, true
	return nil
}

func (f *faults) preserve() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.preserveIn == 0 {
		return nil
	}
	f.preserveIn--
	if f.preserveIn > 0 {
		return nil
	}
	return f.preserveErr
}

func (f *faults) freeze(session string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.freezeErr[session]; ok {
		delete(f.freezeErr, session)
		return e
	}
	return nil
}

func (f *faults) retrieve(session string, token uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := retrieveKey{session, token}
	if e, ok := f.retrieveErr[key]; ok {
		delete(f.retrieveErr, key)
		return e
	}
	return nil
}

func (f *faults) restore() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.restoreArmed {
		return nil
	}
	f.restoreArmed = false
	return f.restoreErr
}
