//go:build linux

package fake

import (
	"sync"
	"sync/atomic"

	"github.com/go-luo/luo/internal/cstr"
	"github.com/go-luo/luo/internal/luoabi"
	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// boot is one running kernel: what the real kernel keeps in its LUO
// globals, from boot until the next live update replaces it.
//
// Locks, in the kernel's order (kernel/liveupdate/luo_session.c): serialize
// (luo_session_serialize_rwsem), then a list's mu (luo_session_header
// rwsem), then a session's mu; preservedMu (the preserved-files xarray's
// lock) and devMu are innermost.
type boot struct {
	k   *Kernel
	cfg *config

	serialize sync.RWMutex
	dead      atomic.Bool // replaced by a live update: every request is stale

	outgoing, incoming header

	devMu        sync.Mutex
	dev          *object // the open device, nil when free
	deserialized bool
	deserErr     error          // why the restore failed; opens then fail with EIO
	in           *incomingState // from the previous kernel, restored on first open
	pages        *restoredPages // the preserved pages restored so far, once in is restored
	inMem        *kho.Memory    // the incoming image's memory, or nil; set before the boot runs

	preservedMu sync.Mutex
	preserved   map[fileKey][]*file
	frozen      map[fileKey]struct{} // memfd inodes the kernel has frozen (preserved.go); guarded by preservedMu
	nfrozen     atomic.Int64         // len(frozen), read without the lock

	liveupdateNum uint64 // the number this boot got from the previous kernel

	// down is why this kernel did not come up (it panicked at boot):
	// nothing runs, every open fails with it.
	down *PanicError
}

// header is a session list (struct luo_session_header).
type header struct {
	mu       sync.RWMutex
	sessions []*session // in insertion order, the order of serialization

	// nblocks is the number of KHO blocks of the outgoing list's block
	// set (Linux 7.2): grown before a create looks at the name, shrunk
	// when a session is removed; serialization writes this many blocks.
	nblocks int
}

// session is struct luo_session.
type session struct {
	name      string
	mu        sync.Mutex
	retrieved atomic.Bool // an incoming session, retrieved in this boot (read without mu, as the kernel does)
	files     []*file     // in preservation order

	fileBlocks uint64 // incoming: the first file block, restored at finish
}

func newBoot(k *Kernel) *boot {
	return &boot{k: k, cfg: &k.cfg, preserved: map[fileKey][]*file{}}
}

// openDevice is the device's open: exclusive, and the first open restores
// the incoming sessions. It returns the user's end of the new device fd.
func (b *boot) openDevice() (int, error) {
	b.devMu.Lock()
	defer b.devMu.Unlock()
	if b.down != nil {
		return -1, b.down
	}
	if b.dev != nil {
		return -1, unix.EBUSY
	}
	if err := b.deserializeOnce(); err != nil {
		return -1, err
	}
	o, user, err := b.k.newObject(b, nil)
	if err != nil {
		return -1, err
	}
	b.dev = o
	return user, nil
}

// openDeviceConn is the device's open through Kernel.Listen: conn, an
// accepted connection, becomes the device's object. On success the open's
// answer is written only once the object is the device and its socket is
// in the hang-up set, so that a client that closes as soon as it has the
// answer is reaped like any other: answering first let a reap run between
// the client's close and the registration and miss it (the device then
// still open after its last close). The answer goes through the object's
// file, which its goroutine cannot close meanwhile. On error nothing is
// written and conn is still the caller's.
func (b *boot) openDeviceConn(conn int) error {
	b.devMu.Lock()
	defer b.devMu.Unlock()
	if b.down != nil {
		return b.down
	}
	if b.dev != nil {
		return unix.EBUSY
	}
	if err := b.deserializeOnce(); err != nil {
		return err
	}
	o, err := b.k.adopt(b, nil, conn)
	if err != nil {
		// The kernel is closing: the client reads no answer, and
		// finds it gone.
		unix.Close(conn)
		return nil
	}
	b.dev = o
	o.rc.Control(func(fd uintptr) { answerOpen(int(fd), 0) })
	return nil
}

func (b *boot) releaseDevice(o *object) {
	b.devMu.Lock()
	defer b.devMu.Unlock()
	if b.dev == o {
		b.dev = nil
	}
}

// deserializeOnce restores the incoming sessions on the first open, and
// returns the same answer on every later one: EIO, with the cause, when it
// failed.
// Called with devMu held.
func (b *boot) deserializeOnce() error {
	if !b.deserialized {
		b.deserialized = true
		if b.in != nil {
			if err := b.restore(b.in); err != nil {
				b.deserErr = err
			}
			b.in = nil
		}
	}
	if b.deserErr != nil {
		return &restoreError{b.deserErr}
	}
	return nil
}

// restoreError is the open's EIO after a failed restore, with its cause.
type restoreError struct{ cause error }

func (e *restoreError) Error() string {
	if e.cause == unix.EIO {
		return "input/output error: the previous kernel's state could not be restored"
	}
	return "input/output error: the previous kernel's state could not be restored: " + e.cause.Error()
}
func (e *restoreError) Unwrap() []error { return []error{unix.EIO, e.cause} }

// insert adds s to the outgoing list as luo_session_insert does: first
// room (the limit, then in Linux 7.2 growing the block set), then the name.
//
// Linux 7.2 grows the block set for one more session before it looks for
// a duplicate name and does not shrink it back on EEXIST: at 51·k
// sessions a duplicate create leaves an empty block at the end of the
// chain, which the next kernel rejects at boot. A later successful create
// fills that block, and a removal shrinks the set: either repairs it.
func (h *header) insert(s *session, b *behaviour, limit int) unix.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.sessions) + 1
	if n > limit {
		return b.sessionsFull
	}
	if b.sessionBlocks {
		// kho_block_set_grow; the limit above is the 10,000 blocks'
		// (or a lower one of WithMaxSessions), so it cannot fail here.
		for n > h.nblocks*kho.SessionsPerBlock {
			h.nblocks++
		}
	}
	for _, it := range h.sessions {
		if it.name == s.name {
			return unix.EEXIST
		}
	}
	h.sessions = append(h.sessions, s)
	return 0
}

// remove takes s off the list (luo_session_remove); the outgoing list's
// block set then shrinks to what the sessions left need
// (kho_block_set_shrink).
func (h *header) remove(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, it := range h.sessions {
		if it == s {
			h.sessions = append(h.sessions[:i], h.sessions[i+1:]...)
			break
		}
	}
	for h.nblocks > 0 && len(h.sessions) <= (h.nblocks-1)*kho.SessionsPerBlock {
		h.nblocks--
	}
}

func (h *header) find(name string) *session {
	for _, it := range h.sessions {
		if it.name == name {
			return it
		}
	}
	return nil
}

// deviceIoctl is the device's ioctl: the kernel's checks in the kernel's
// order, then the command.
func (b *boot) deviceIoctl(o *object, r *request) {
	if b.dead.Load() {
		r.stale = true
		return
	}
	nr := luoabi.Nr(r.req)
	if nr-luoabi.DeviceBase >= 2 {
		r.errno = unix.EINVAL
		return
	}
	size, err := luoabi.ReadSize(r.arg)
	if err != nil {
		r.errno = unix.EFAULT
		return
	}
	c := nr
	if r.req != c.Request() {
		r.errno = unix.ENOTTY
		return
	}
	if luoabi.CheckSize(size, luoabi.MinSize(c)) != nil {
		r.errno = unix.EINVAL
		return
	}
	var kbuf [liveupdate.SizeofCreateSession]byte
	if err := luoabi.CopyStructFromUser(kbuf[:], r.arg, size); err != nil {
		r.errno = err.(unix.Errno)
		return
	}
	var a liveupdate.CreateSessionArgs
	a.Decode(kbuf[:])
	var user int
	var errno unix.Errno
	if c == liveupdate.CmdCreateSession {
		user, errno = b.createSession(&a.Name)
	} else {
		user, errno = b.retrieveSession(&a.Name)
	}
	if errno == unix.ESTALE {
		r.stale = true
		return
	}
	if errno != 0 {
		r.errno = errno
		return
	}
	a.FD = -1 // the caller's fd number is filled in where the fd lands
	a.Encode(kbuf[:])
	r.reply = kbuf[:luoabi.ReplyLen(size, liveupdate.SizeofCreateSession)]
	r.newFD = user
}

// createSession is luo_session_create.
func (b *boot) createSession(raw *[liveupdate.SessionNameLen]byte) (int, unix.Errno) {
	var name string
	if b.cfg.b.nameValidation {
		n, err := liveupdate.NameFromBytes(raw)
		if err != nil {
			return -1, unix.EINVAL
		}
		name = n
	} else {
		name = strscpy(raw)
	}
	b.serialize.RLock()
	defer b.serialize.RUnlock()
	if b.dead.Load() {
		return -1, unix.ESTALE
	}
	s := &session{name: name}
	if errno := b.outgoing.insert(s, &b.cfg.b, b.cfg.sessionLimit()); errno != 0 {
		return -1, errno
	}
	_, user, err := b.k.newObject(b, s)
	if err != nil {
		b.outgoing.remove(s)
		return -1, toErrno(err)
	}
	return user, 0
}

// retrieveSession is luo_session_retrieve.
func (b *boot) retrieveSession(raw *[liveupdate.SessionNameLen]byte) (int, unix.Errno) {
	name := cstr.String(raw[:])
	b.serialize.RLock()
	defer b.serialize.RUnlock()
	if b.dead.Load() {
		return -1, unix.ESTALE
	}
	b.incoming.mu.RLock()
	defer b.incoming.mu.RUnlock()
	s := b.incoming.find(name)
	if s == nil {
		return -1, unix.ENOENT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retrieved.Load() {
		return -1, unix.EINVAL
	}
	_, user, err := b.k.newObject(b, s)
	if err != nil {
		return -1, toErrno(err)
	}
	s.retrieved.Store(true)
	return user, 0
}

// releaseSession is luo_session_release: closing an incoming session
// finishes it, closing an outgoing one unpreserves its files; either way
// the session leaves its list, unless finishing fails.
func (b *boot) releaseSession(s *session) {
	b.serialize.RLock()
	defer b.serialize.RUnlock()
	if b.dead.Load() {
		return // handed over, or the kernel stopped
	}
	if s.retrieved.Load() {
		s.mu.Lock()
		errno := b.finishFiles(s)
		s.mu.Unlock()
		if errno != 0 {
			return // stays listed, retrieved and unreachable, as in the kernel
		}
		b.incoming.remove(s)
		return
	}
	s.mu.Lock()
	b.unpreserveFiles(s)
	s.mu.Unlock()
	b.outgoing.remove(s)
}

// shutdown drops the fake's references to preserved files when this
// kernel stops (Kernel.Close) or is replaced.
func (b *boot) shutdown() {
	b.dead.Store(true)
	for _, h := range []*header{&b.outgoing, &b.incoming} {
		h.mu.Lock()
		for _, s := range h.sessions {
			s.mu.Lock()
			for _, f := range s.files {
				f.drop()
			}
			s.mu.Unlock()
		}
		h.mu.Unlock()
	}
	if b.inMem != nil {
		// The copies of large files that no retrieve took: no request
		// of this boot runs any more.
		b.inMem.Close()
	}
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	clear(b.preserved)
	clear(b.frozen)
	b.nfrozen.Store(0)
}

// strscpy copies a name field as Linux 6.19 did, without
// validation: up to the first NUL, at most 63 bytes.
func strscpy(raw *[liveupdate.SessionNameLen]byte) string {
	s := cstr.String(raw[:])
	if len(s) > liveupdate.MaxNameLen {
		s = s[:liveupdate.MaxNameLen]
	}
	return s
}

func toErrno(err error) unix.Errno {
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.EIO
}
