//go:build linux

package fake

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	retrieveErr  map[retrieveKey]retrieveFault
	restoreErr   unix.Errno
	restoreArmed bool

	// expired are retrieve faults whose boot ended before they fired.
	expired []string
}

// retrieveFault is an armed FailRetrieve.
type retrieveFault struct {
	errno unix.Errno
	// boot is the kernel whose incoming sessions it targets: the one
	// running when it was armed, if that one's incoming sessions include
	// its session, else (nil until the Kexec) the next.
	boot *boot
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
// past 4095 (an error matching EINVAL, nothing armed). The session need
// not exist yet, but when the Kexec comes it must be outgoing: a Kexec
// with no outgoing session of that name fails with an
// *UnmatchedFaultError instead, before freezing anything.
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
//
// When the running kernel's incoming sessions (handed over, retrieved or
// not, and not yet finished) include one of that name, the fault is for
// it, and FailRetrieve returns an *UnmatchedFaultError, arming nothing,
// when that session holds no such token or its file was retrieved
// already. Otherwise the fault is for the sessions the next Kexec hands
// over, and that Kexec fails with an *UnmatchedFaultError, before
// freezing anything, when none of them is a session of that name holding
// token. A fault for the running kernel that has not fired when it is
// replaced is dropped, and CheckFaults reports it.
func (k *Kernel) FailRetrieve(session string, token uint64, errno unix.Errno) error {
	if err := checkFault(errno); err != nil {
		return err
	}
	b := k.boot()
	target, reason := b.incomingFile(session, token)
	if reason != "" {
		return &UnmatchedFaultError{Fault: retrieveFaultName(session, token, errno), Reason: reason}
	}
	k.faults.mu.Lock()
	defer k.faults.mu.Unlock()
	if k.faults.retrieveErr == nil {
		k.faults.retrieveErr = map[retrieveKey]retrieveFault{}
	}
	k.faults.retrieveErr[retrieveKey{session, token}] = retrieveFault{errno: errno, boot: target}
	return nil
}

// incomingFile tells which kernel a retrieve fault for session and token
// targets: b, when b's incoming sessions include session, else nil (the
// next). A reason is returned when session is incoming here but the
// fault cannot fire on it.
func (b *boot) incomingFile(session string, token uint64) (target *boot, reason string) {
	b.devMu.Lock()
	in := b.in
	b.devMu.Unlock()
	if in != nil {
		// Not yet restored (the first open restores it).
		if in.st == nil {
			return nil, ""
		}
		for _, ss := range in.st.Sessions {
			if ss.Name != session {
				continue
			}
			for _, f := range ss.Files {
				if f.Token == token {
					return b, ""
				}
			}
			return nil, fmt.Sprintf("incoming session %q holds no token %d", session, token)
		}
		return nil, ""
	}
	b.incoming.mu.RLock()
	defer b.incoming.mu.RUnlock()
	for _, s := range b.incoming.sessions {
		if s.name != session {
			continue
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range s.files {
			if f.token() != token {
				continue
			}
			if f.retrieveStatus != 0 {
				return nil, fmt.Sprintf("token %d of incoming session %q was retrieved already", token, session)
			}
			return b, ""
		}
		return nil, fmt.Sprintf("incoming session %q holds no token %d", session, token)
	}
	return nil, ""
}

// CheckFaults returns nil when every fault armed by a Fail method has
// fired (or none was armed), and otherwise an *UnfiredFaultsError naming
// each one that has not: still armed, or, for FailRetrieve, dropped when
// the kernel it was for was replaced. A test calls it at its end to show
// that the error paths it meant to exercise were taken; it disarms
// nothing.
func (k *Kernel) CheckFaults() error {
	f := &k.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	list := slices.Clone(f.expired)
	if f.preserveIn > 0 {
		list = append(list, fmt.Sprintf("FailPreserve(%d, %s) (%d more preserves to go)", f.preserveIn, errnoName(f.preserveErr), f.preserveIn))
	}
	for s, e := range f.freezeErr {
		list = append(list, freezeFaultName(s, e))
	}
	for key, rf := range f.retrieveErr {
		list = append(list, retrieveFaultName(key.session, key.token, rf.errno))
	}
	if f.restoreArmed {
		list = append(list, "FailRestore("+errnoName(f.restoreErr)+")")
	}
	if len(list) == 0 {
		return nil
	}
	slices.Sort(list)
	return &UnfiredFaultsError{Faults: list}
}

// checkMatch is the Kexec's check, before freezing: every freeze fault
// names an outgoing session, and every retrieve fault for the next kernel
// a session and token it hands over. It disarms the first fault that does
// not, and returns its error.
// Called with the outgoing list's mu held.
func (f *faults) checkMatch(outgoing []*session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.freezeErr) == 0 && len(f.retrieveErr) == 0 {
		return nil // nothing armed: no index of the outgoing sessions
	}
	byName := make(map[string]*session, len(outgoing))
	for _, s := range outgoing {
		byName[s.name] = s
	}
	names := make([]string, 0, len(f.freezeErr))
	for name := range f.freezeErr {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if byName[name] == nil {
			e := f.freezeErr[name]
			delete(f.freezeErr, name)
			return &UnmatchedFaultError{Fault: freezeFaultName(name, e), Reason: fmt.Sprintf("the live update has no outgoing session %q to freeze", name)}
		}
	}
	keys := make([]retrieveKey, 0, len(f.retrieveErr))
	for key, rf := range f.retrieveErr {
		if rf.boot == nil {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b retrieveKey) int {
		if a.session != b.session {
			return strings.Compare(a.session, b.session)
		}
		return cmp.Compare(a.token, b.token)
	})
	for _, key := range keys {
		reason := ""
		if s := byName[key.session]; s == nil {
			reason = fmt.Sprintf("the live update hands over no session %q", key.session)
		} else if !s.holds(key.token) {
			reason = fmt.Sprintf("the live update hands over session %q without token %d", key.session, key.token)
		}
		if reason != "" {
			rf := f.retrieveErr[key]
			delete(f.retrieveErr, key)
			return &UnmatchedFaultError{Fault: retrieveFaultName(key.session, key.token, rf.errno), Reason: reason}
		}
	}
	return nil
}

// holds tells whether s holds a file of that token.
func (s *session) holds(token uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.token() == token {
			return true
		}
	}
	return false
}

// replaced moves the faults as old is replaced by next: retrieve faults
// for old that have not fired are dropped (CheckFaults reports them), and
// those for the next kernel now target next. next is nil for a Reboot,
// after which the faults for the next kernel wait for the next Kexec.
func (f *faults) replaced(old, next *boot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, rf := range f.retrieveErr {
		switch {
		case rf.boot == old:
			delete(f.retrieveErr, key)
			f.expired = append(f.expired, retrieveFaultName(key.session, key.token, rf.errno)+" (its kernel was replaced before the retrieve)")
		case rf.boot == nil && next != nil:
			rf.boot = next
			f.retrieveErr[key] = rf
		}
	}
}

func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

func freezeFaultName(session string, e unix.Errno) string {
	return fmt.Sprintf("FailFreeze(%q, %s)", session, errnoName(e))
}

func retrieveFaultName(session string, token uint64, e unix.Errno) string {
	return fmt.Sprintf("FailRetrieve(%q, %d, %s)", session, token, errnoName(e))
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

// retrieve answers the first retrieve of token in b's incoming session.
func (f *faults) retrieve(b *boot, session string, token uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := retrieveKey{session, token}
	if rf, ok := f.retrieveErr[key]; ok && rf.boot == b {
		delete(f.retrieveErr, key)
		return rf.errno
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
