//go:build linux

package fake

import (
	"sync"

	"github.com/go-luo/luo/internal/fakewire"
	"golang.org/x/sys/unix"
)

// file is struct luo_file: one preserved file of a session.
type file struct {
	h   Handler
	hf  HandlerFile // hf.FD: the fake's reference to the file, or -1
	key fileKey

	// incoming
	retrieveStatus unix.Errno // 0 not tried; retrieveOK after success; else the cached errno

	// A retrieve's reply carries hf.FD itself (the fake's reference is
	// the kernel's luo_file.file, which outlives the caller's fd until
	// finish): no copy to close, so the reply needs no second message.
	// A drop while replies are in flight leaves the fd to the last.
	lendMu    sync.Mutex
	lends     int  // replies in flight carrying hf.FD
	orphan    int  // hf.FD dropped while lent, closed by the last unlend
	hasOrphan bool // orphan is set
}

func (f *file) token() uint64 { return f.hf.Token }

const retrieveOK unix.Errno = 1 << 20 // a status no errno has

// fileKey indexes the preserved-files table (the kernel's xarray keyed by
// the handler's get_id) by inode; the handler's SameFile refines it.
type fileKey struct{ dev, ino uint64 }

func keyOf(fd int) (fileKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileKey{}, err
	}
	return fileKey{uint64(st.Dev), st.Ino}, nil
}

// drop releases the fake's reference to the file, and what its handler
// holds for it beyond the fd (the memfd handler's pinned mapping).
func (f *file) drop() {
	if r, ok := f.hf.Private.(interface{ release() }); ok {
		r.release()
	}
	f.lendMu.Lock()
	defer f.lendMu.Unlock()
	if f.hf.FD >= 0 {
		if f.lends > 0 {
			f.orphan, f.hasOrphan = f.hf.FD, true
		} else {
			unix.Close(f.hf.FD)
		}
		f.hf.FD = -1
	}
}

// lend returns hf.FD for a reply to send, open until unlend. Called with
// the session's mu held, after a successful retrieve.
func (f *file) lend() int {
	f.lendMu.Lock()
	defer f.lendMu.Unlock()
	f.lends++
	return f.hf.FD
}

// unlend ends a lend, once its reply was sent or given up.
func (f *file) unlend() {
	f.lendMu.Lock()
	defer f.lendMu.Unlock()
	if f.lends--; f.lends == 0 && f.hasOrphan {
		unix.Close(f.orphan)
		f.hasOrphan = false
	}
}

// preserve is luo_preserve_file, in the kernel's order of checks.
func (b *boot) preserve(s *session, r *request, token uint64) unix.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.token() == token {
			return unix.EEXIST
		}
	}
	if len(s.files)+1 > b.cfg.fileLimit() {
		return unix.ENOSPC
	}
	if r.argFD < 0 || r.flags&fakewire.FlagBadFD != 0 || isOPath(r.argFD) {
		return unix.EBADF
	}
	var h Handler
	for _, it := range b.k.handlers {
		if it.CanPreserve(r.argFD) {
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
	f := &file{h: h, key: key, hf: HandlerFile{Token: token, FD: r.argFD}}
	if b.cfg.b.doublePreserveBusy {
		if errno := b.track(f); errno != 0 {
			return errno
		}
	}
	_, memfd := h.(*memfdHandler)
	err = b.k.faults.preserve()
	if err == nil {
		err = h.Preserve(&f.hf)
		if err != nil && memfd {
			// memfd_luo_preserve froze the inode first and
			// thaws it on every error path.
			b.setFrozen(key, false)
		}
	}
	if err != nil {
		b.untrack(f)
		return toErrno(err)
	}
	if memfd {
		b.setFrozen(key, true)
	}
	r.argFDKept = true
	s.files = append(s.files, f)
	return 0
}

// isOPath tells an O_PATH fd, which the kernel's fget (fs/file.c: fget
// masks FMODE_PATH) does not return: luo_preserve_file answers EBADF, as
// for a closed fd. Such fds pass SCM_RIGHTS (scm_fp_copy takes them with
// fget_raw), so the fake sees them and must refuse them itself.
func isOPath(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_PATH != 0
}

// track enters f in the preserved-files table: EBUSY when an entry is the
// same file.
func (b *boot) track(f *file) unix.Errno {
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	for _, g := range b.preserved[f.key] {
		if sameFile(f.h, g.hf.FD, f.hf.FD) {
			return unix.EBUSY
		}
	}
	b.preserved[f.key] = append(b.preserved[f.key], f)
	return 0
}

func sameFile(h Handler, a, b int) bool {
	if id, ok := h.(FileIdentifier); ok {
		return id.SameFile(a, b)
	}
	return true
}

func (b *boot) untrack(f *file) {
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
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

// unpreserveFiles is luo_file_unpreserve_files: last preserved first.
// Called with s.mu held.
func (b *boot) unpreserveFiles(s *session) {
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		f.h.Unpreserve(&f.hf)
		if _, ok := f.h.(*memfdHandler); ok {
			b.setFrozen(f.key, false)
		}
		b.untrack(f)
		f.drop()
	}
	s.files = nil
}

// retrieve is luo_retrieve_file. On success it returns the file's fd for
// the reply, lent (the caller unlends it once the reply is sent).
func (b *boot) retrieve(s *session, token uint64) (int, *file, unix.Errno) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f *file
	for _, it := range s.files {
		if it.token() == token {
			f = it
			break
		}
	}
	if f == nil {
		return -1, nil, unix.ENOENT
	}
	if !s.retrieved.Load() {
		// Only Linux 6.19 lets RETRIEVE_FD reach an
		// outgoing session; its handlers then retrieve from data that
		// was never serialized and fail (with KHO warnings). The fake
		// fails it the same way every time, without asking the
		// handler.
		return -1, nil, unix.EINVAL
	}
	switch f.retrieveStatus {
	case 0:
		err := b.k.faults.retrieve(b, s.name, token)
		fd := -1
		if err == nil {
			fd, err = f.h.Retrieve(&f.hf)
		}
		if err != nil {
			errno := toErrno(err)
			if b.cfg.b.stickyRetrieve {
				f.retrieveStatus = errno
			}
			return -1, nil, errno
		}
		f.hf.FD = fd
		f.hf.Retrieved = true
		f.retrieveStatus = retrieveOK
		if b.cfg.b.doublePreserveBusy {
			if key, err := keyOf(fd); err == nil {
				f.key = key
			}
			b.preservedMu.Lock()
			b.preserved[f.key] = append(b.preserved[f.key], f)
			b.preservedMu.Unlock()
		}
	case retrieveOK:
	default:
		return -1, nil, f.retrieveStatus
	}
	if f.hf.FD < 0 {
		return -1, nil, unix.EBADF // dropped by a shutdown racing this request
	}
	// The reply carries hf.FD: the caller gets another fd of the same
	// open file, and the offset is shared.
	return f.lend(), f, 0
}

// finishFiles is luo_file_finish: every handler may refuse (EBUSY, and
// nothing is finished), then the files are finished last first; files
// never retrieved are destroyed. Called with s.mu held.
func (b *boot) finishFiles(s *session) unix.Errno {
	if len(s.files) == 0 {
		return 0
	}
	for _, f := range s.files {
		if !f.h.CanFinish(&f.hf) {
			return unix.EBUSY
		}
	}
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		f.h.Finish(&f.hf)
		if f.retrieveStatus == retrieveOK {
			b.untrack(f)
		}
		f.drop()
	}
	s.files = nil
	b.restoreFileBlocks(s)
	return 0
}
