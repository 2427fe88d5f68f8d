//go:build linux

package fake

import (
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

// FailPreserve makes the nth preserve from now (1 for the next) that
// passes the kernel's checks fail with errno, as its handler's preserve
// would.
func (k *Kernel) FailPreserve(n int, errno unix.Errno) {
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	k.faults.preserveIn, k.faults.preserveErr = n, errno
}

// FailFreeze makes the next live update fail with errno when it freezes
// the session of that name, as a handler's freeze would: Kexec returns the
// error and every session stays as it was.
func (k *Kernel) FailFreeze(session string, errno unix.Errno) {
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	if k.faults.freezeErr == nil {
		k.faults.freezeErr = map[string]unix.Errno{}
	}
	k.faults.freezeErr[session] = errno
}

// FailRetrieve makes the first retrieve of token in the incoming session
// of that name fail with errno, as its handler's retrieve would; like the
// kernel, later retrieves fail the same way.
func (k *Kernel) FailRetrieve(session string, token uint64, errno unix.Errno) {
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	if k.faults.retrieveErr == nil {
		k.faults.retrieveErr = map[retrieveKey]unix.Errno{}
	}
	k.faults.retrieveErr[retrieveKey{session, token}] = errno
}

// FailRestore makes the next kernel's restore of the handed-over state
// fail with errno, as a decoding error would: its first open, and every
// later one, fails with EIO.
func (k *Kernel) FailRestore(errno unix.Errno) {
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	k.faults.restoreErr, k.faults.restoreArmed = errno, true
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
