//go:build linux

package fake

import (
	"github.com/go-luo/luo/internal/fakewire"
	"golang.org/x/sys/unix"
)

// file is struct luo_file: one preserved file of a session.
type file struct {
	h     handler
	token uint64
	key   fileKey
	fd    int // outgoing: the fake's reference to the preserved file; -1 when none

	// incoming
	data           any        // what the previous kernel's handler serialized
	retrieveStatus unix.Errno // 0 not tried; retrieveOK after success; else the cached errno
	retrieved      int        // the retrieved file, held until finish; -1 when none

	private any // the handler's, between preserve and unpreserve
}

const retrieveOK unix.Errno = 1 << 20 // a status no errno has

// fileKey indexes the preserved-files table (the kernel's xarray keyed by
// the handler's get_id).
type fileKey struct{ dev, ino uint64 }

func keyOf(fd int) (fileKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileKey{}, err
	}
	return fileKey{uint64(st.Dev), st.Ino}, nil
}

// drop releases the fake's references to the file.
func (f *file) drop() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
	if f.retrieved >= 0 {
		unix.Close(f.retrieved)
		f.retrieved = -1
	}
}

// handler is a file handler (struct liveupdate_file_handler).
type handler interface {
	compatible() string
	canPreserve(fd int) bool
	// sameFile reports whether two fds of one inode are the same
	// preserved object for the EBUSY check (the handler's get_id).
	sameFile(a, b int) bool
	preserve(f *file) error
	unpreserve(f *file)
	// freeze captures the file for the next kernel and returns what goes
	// into the handover.
	freeze(f *file) (any, error)
	unfreeze(f *file)
	// retrieve rebuilds the file in the new kernel from f.data and
	// returns its fd, owned by the fake.
	retrieve(f *file) (int, error)
	canFinish(f *file) bool
	finish(f *file)
}

// preserve is luo_preserve_file, in the kernel's order of checks.
func (b *boot) preserve(s *session, r *request, token uint64) unix.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.token == token {
			return unix.EEXIST
		}
	}
	if len(s.files)+1 > b.cfg.fileLimit() {
		return unix.ENOSPC
	}
	if r.argFD < 0 || r.flags&fakewire.FlagBadFD != 0 {
		return unix.EBADF
	}
	var h handler
	for _, it := range b.k.handlers {
		if it.canPreserve(r.argFD) {
			h = it
			break
		}
	}
	if h == nil {
		return unix.ENOENT
	}
	key, err := keyOf(r.argFD)
	if err != nil {
		return unix.EBADF
	}
	f := &file{h: h, token: token, key: key, fd: r.argFD, retrieved: -1}
	if b.cfg.gen != FirstMerged {
		if errno := b.track(f); errno != 0 {
			return errno
		}
	}
	if err := h.preserve(f); err != nil {
		b.untrack(f)
		return toErrno(err)
	}
	r.argFDKept = true
	s.files = append(s.files, f)
	return 0
}

// track enters f in the preserved-files table: EBUSY when the handler
// says an entry is the same file.
func (b *boot) track(f *file) unix.Errno {
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	if b.preserved[f.key] != nil {
		for _, g := range b.preservedList(f.key) {
			if f.h.sameFile(g.liveFD(), f.liveFD()) {
				return unix.EBUSY
			}
		}
	}
	b.preservedAdd(f)
	return 0
}

func (b *boot) untrack(f *file) {
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	b.preservedRemove(f)
}

// liveFD is the fd that stands for the file now: the preserved one, or
// the retrieved one.
func (f *file) liveFD() int {
	if f.fd >= 0 {
		return f.fd
	}
	return f.retrieved
}

// unpreserveFiles is luo_file_unpreserve_files: last preserved first.
// Called with s.mu held.
func (b *boot) unpreserveFiles(s *session) {
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		f.h.unpreserve(f)
		b.untrack(f)
		f.drop()
	}
	s.files = nil
}

// retrieve is luo_retrieve_file; it returns a new fd for the caller.
func (b *boot) retrieve(s *session, token uint64) (int, unix.Errno) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f *file
	for _, it := range s.files {
		if it.token == token {
			f = it
			break
		}
	}
	if f == nil {
		return -1, unix.ENOENT
	}
	switch f.retrieveStatus {
	case 0:
		fd, err := f.h.retrieve(f)
		if err != nil {
			errno := toErrno(err)
			if b.cfg.gen != FirstMerged {
				f.retrieveStatus = errno
			}
			return -1, errno
		}
		f.retrieved = fd
		f.retrieveStatus = retrieveOK
		if key, err := keyOf(fd); err == nil {
			f.key = key
		}
		if b.cfg.gen != FirstMerged {
			b.preservedMu.Lock()
			b.preservedAdd(f)
			b.preservedMu.Unlock()
		}
	case retrieveOK:
	default:
		return -1, f.retrieveStatus
	}
	// Another fd of the same open file: the offset is shared.
	fd, err := unix.FcntlInt(uintptr(f.retrieved), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, toErrno(err)
	}
	return fd, 0
}

// finishFiles is luo_file_finish: every handler may refuse (EBUSY, and
// nothing is finished), then the files are finished last first; files
// never retrieved are destroyed. Called with s.mu held.
func (b *boot) finishFiles(s *session) unix.Errno {
	if len(s.files) == 0 {
		return 0
	}
	for _, f := range s.files {
		if !f.h.canFinish(f) {
			return unix.EBUSY
		}
	}
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		f.h.finish(f)
		if f.retrieveStatus == retrieveOK {
			b.untrack(f)
		}
		f.drop()
	}
	s.files = nil
	return 0
}

// The preserved-files table: files by inode, then by the handler's
// identity. Called with preservedMu held.
func (b *boot) preservedList(k fileKey) []*file { return b.preserved[k] }

func (b *boot) preservedAdd(f *file) { b.preserved[f.key] = append(b.preserved[f.key], f) }

func (b *boot) preservedRemove(f *file) {
	l := b.preserved[f.key]
	for i, g := range l {
		if g == f {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(b.preserved, f.key)
	} else {
		b.preserved[f.key] = l
	}
}
