//go:build linux

package fake

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memfdHandler models mm/memfd_luo.c: it preserves memfds (any shmem file
// with no links: memfd_create, O_TMPFILE on tmpfs) with their contents,
// size and file position.
//
// The kernel freezes a preserved memfd's size: ftruncate, a write past the
// end and fallocate fail with EPERM until the session is closed. A process
// cannot make a file refuse that and allow it again later (seals are for
// good), so the fake checks instead: when the size has changed at the live
// update, the kexec fails with an error matching EPERM that names the file,
// telling the test that its agent did what the kernel would have refused.
type memfdHandler struct {
	v2 bool // memfd-v2: seals kept, files compared by inode
}

func (h *memfdHandler) compatible() string {
	if h.v2 {
		return "memfd-v2"
	}
	return "memfd-v1"
}

func (h *memfdHandler) canPreserve(fd int) bool {
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return false // hugetlbfs memfds are not shmem files
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 0
}

// sameFile is the handler's get_id: memfd-v2 keys files by inode, so any fd
// of the memfd is the same; memfd-v1 has none, so the kernel keys by
// struct file, and only fds of the same open file (dups, fds passed over
// sockets) are the same.
func (h *memfdHandler) sameFile(a, b int) bool {
	if h.v2 {
		return true
	}
	pid := os.Getpid()
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), kcmpFile, uintptr(a), uintptr(b), 0)
	if e != 0 {
		return true // no kcmp: fall back to the inode
	}
	return r == 0
}

const kcmpFile = 0 // KCMP_FILE

type memfdPrivate struct{ size int64 }

func (h *memfdHandler) preserve(f *file) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return err
	}
	f.private = memfdPrivate{size: st.Size}
	return nil
}

func (h *memfdHandler) unpreserve(f *file) {}

// FrozenSizeError reports a preserved memfd whose size changed before the
// live update, which the kernel would have refused with EPERM.
type FrozenSizeError struct {
	Token     uint64
	Preserved int64 // size when preserved
	Now       int64 // size at the live update
}

func (e *FrozenSizeError) Error() string {
	return fmt.Sprintf("fake: memfd preserved as token %#x changed size from %d to %d while preserved; the kernel refuses ftruncate, writes past the end and fallocate on a preserved memfd (EPERM)", e.Token, e.Preserved, e.Now)
}

// Unwrap returns EPERM, the kernel's answer to the change.
func (e *FrozenSizeError) Unwrap() error { return unix.EPERM }

// memfdState is what memfd-v1 hands to the next kernel.
type memfdState struct {
	pos, size int64
	seals     int
	contents  []byte
}

func (h *memfdHandler) freeze(f *file) (any, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return nil, err
	}
	if p := f.private.(memfdPrivate); st.Size != p.size {
		return nil, &FrozenSizeError{Token: f.token, Preserved: p.size, Now: st.Size}
	}
	pos, err := unix.Seek(f.fd, 0, 1)
	if err != nil {
		return nil, err
	}
	s := &memfdState{pos: pos, size: st.Size, contents: make([]byte, st.Size)}
	if _, err := unix.Pread(f.fd, s.contents, 0); err != nil {
		return nil, err
	}
	if h.v2 {
		s.seals, _ = unix.FcntlInt(uintptr(f.fd), unix.F_GET_SEALS, 0)
	}
	return s, nil
}

func (h *memfdHandler) unfreeze(f *file) {}

func (h *memfdHandler) retrieve(f *file) (int, error) {
	s, ok := f.data.(*memfdState)
	if !ok {
		return -1, unix.EINVAL
	}
	flags := unix.MFD_CLOEXEC
	if h.v2 {
		flags |= unix.MFD_ALLOW_SEALING
	}
	fd, err := unix.MemfdCreate("", flags)
	if err != nil {
		return -1, err
	}
	if err := h.fill(fd, s); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (h *memfdHandler) fill(fd int, s *memfdState) error {
	if err := unix.Ftruncate(fd, s.size); err != nil {
		return err
	}
	const page = 4096
	for off := 0; off < len(s.contents); off += page {
		p := s.contents[off:min(off+page, len(s.contents))]
		if allZero(p) {
			continue // a hole reads back as zeros
		}
		if _, err := unix.Pwrite(fd, p, int64(off)); err != nil {
			return err
		}
	}
	if _, err := unix.Seek(fd, s.pos, 0); err != nil {
		return err
	}
	if h.v2 && s.seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, s.seals); err != nil {
			return err
		}
	}
	return nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

func (h *memfdHandler) canFinish(f *file) bool { return true }

func (h *memfdHandler) finish(f *file) {}
