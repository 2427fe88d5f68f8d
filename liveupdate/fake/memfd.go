//go:build linux

package fake

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/go-luo/luo/kho"
	"golang.org/x/sys/unix"
)

// memfdHandler models mm/memfd_luo.c: it preserves memfds (any shmem file
// with no links: memfd_create, O_TMPFILE on tmpfs) with their contents,
// size and file position, in the layout of its generation: memfd-v1
// (Linux 6.19) or memfd-v2 (Linux 7.2, which also keeps seals and knows a
// memfd by its inode). A kernel has one memfd handler, so an image whose
// memfds were written in the other layout cannot be restored (no handler
// of that compatible string: the first open fails with EIO).
//
// The kernel pins a preserved memfd's pages and freezes its size:
// ftruncate, a write past the end and fallocate fail with EPERM until the
// session is closed. A process cannot make a file refuse that and allow it
// again later (seals are for good), so the fake checks instead: when the
// size has changed at the live update, the kexec fails with a
// FrozenSizeError, and when pages were released (a punched hole, a
// truncate grown or rewritten back to the same size) with a
// FrozenPagesError, both matching EPERM and naming the file, telling the
// test that its agent did what the kernel would have refused (frozen.go
// says what is caught and what is not). The contents are read at the live
// update, as the pinned pages are.
type memfdHandler struct {
	compat string // kho.MemfdV1 or kho.MemfdV2
}

func (h *memfdHandler) v2() bool { return h.compat == kho.MemfdV2 }

func (h *memfdHandler) Compatible() string { return h.compat }

func (h *memfdHandler) CanPreserve(fd int) bool {
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return false // hugetlbfs memfds are not shmem files
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 0
}

// SameFile is the handler's get_id: memfd-v2 keys files by inode, so any fd
// of the memfd is the same; memfd-v1 has none, so the kernel keys by
// struct file, and only fds of the same open file (dups, fds passed over
// sockets) are the same. kcmp(2) tells; without it, the inode decides.
func (h *memfdHandler) SameFile(a, b int) bool {
	if h.v2() {
		return true
	}
	pid := os.Getpid()
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), kcmpFile, uintptr(a), uintptr(b), 0)
	if e != 0 {
		return true
	}
	return r == 0
}

const kcmpFile = 0 // KCMP_FILE

type memfdPrivate struct {
	size   int64  // at preserve: the size the kernel would freeze
	seals  uint32 // memfd-v2: at preserve
	blocks int64  // st_blocks at preserve (with a witness, once it pins the pages): only a release lowers it
	pin    *witness
}

// release unmaps the witness; file.drop calls it.
func (p *memfdPrivate) release() { p.pin.release() }

func (h *memfdHandler) Preserve(f *HandlerFile) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.FD, &st); err != nil {
		return err
	}
	p := &memfdPrivate{size: st.Size}
	if h.v2() {
		// memfd_luo_preserve records the seals when the file is
		// preserved and refuses seals it does not know, then files of
		// more than UINT_MAX pages (memfd_pin_folios' limit).
		seals, err := unix.FcntlInt(uintptr(f.FD), unix.F_GET_SEALS, 0)
		if err == nil {
			if uint32(seals)&^kho.MemfdAllSeals != 0 {
				return unix.EOPNOTSUPP
			}
			p.seals = uint32(seals)
		}
		// More than UINT_MAX pages: more than UINT_MAX whole pages of
		// bytes.
		if st.Size > math.MaxUint32*kho.PageSize {
			return unix.EFBIG
		}
	}
	// The block count before the pin: the pages the pin faults into
	// holes are clean, and unless the witness keeps them mapped and
	// locked the kernel may drop them again, which is no release.
	p.blocks = st.Blocks
	p.pin = pinPages(f.FD, st.Size)
	if p.pin != nil {
		if err := unix.Fstat(f.FD, &st); err != nil {
			p.pin.release()
			return err
		}
		p.blocks = st.Blocks
	}
	f.Private = p
	return nil
}

// Unpreserve unpins the pages, as memfd_luo_unpreserve does.
func (h *memfdHandler) Unpreserve(f *HandlerFile) {
	if p, ok := f.Private.(*memfdPrivate); ok {
		p.release()
	}
}

// Freeze writes the memfd into the image: its position, size and every
// page (the kernel pins them all, so holes come back as zeroed pages).
func (h *memfdHandler) Freeze(f *HandlerFile) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.FD, &st); err != nil {
		return err
	}
	p := f.Private.(*memfdPrivate)
	if st.Size != p.size {
		return &FrozenSizeError{Token: f.Token, Preserved: p.size, Now: st.Size}
	}
	if off, _ := p.pin.released(); off >= 0 {
		return &FrozenPagesError{Token: f.Token, Offset: off}
	}
	if st.Blocks < p.blocks {
		return &FrozenPagesError{Token: f.Token, Offset: -1}
	}
	pos, err := unix.Seek(f.FD, 0, 1)
	if err != nil {
		return err
	}
	rfd, err := readable(f.FD)
	if err != nil {
		return err
	}
	if rfd != f.FD {
		defer unix.Close(rfd)
	}
	pa, err := kho.WriteMemfd(f.Mem, h.Compatible(), uint64(pos), uint64(st.Size), p.seals, memfdContents(rfd, st.Size, h.retrieveFlags(), h.v2() && !f.toFile))
	if err != nil {
		return err
	}
	f.Data = pa
	return nil
}

// Unfreeze has nothing to undo: the image being written is dropped whole.
func (h *memfdHandler) Unfreeze(f *HandlerFile) {}

// Retrieve makes a new memfd with the preserved contents, size, position
// and (memfd-v2) seals, as memfd_luo_retrieve does with
// memfd_alloc_file("", flags): memfd-v2 makes it with MFD_ALLOW_SEALING
// and adds the preserved seals, memfd-v1 without, so it cannot be sealed.
// The file is O_RDWR|O_LARGEFILE and mode 0777, whatever the host's
// vm.memfd_noexec says (MFD_EXEC), except where that sysctl forbids
// MFD_EXEC: then the host's memfd_create makes it mode 0666 with
// F_SEAL_EXEC. Its name differs: the kernel's file has an empty name, a
// memfd made by a process is "memfd:" at least.
//
// Each preserved page is restored once in a boot, across all files: a
// memfd whose folio array or folios another file, a discarded memfd or
// LUO's luo_ser and session blocks already took fails as
// memfd_luo_retrieve does, with EINVAL for the folio array
// (kho_restore_vmalloc) and EIO for a folio (kho_restore_folio); see
// kho.Restorer. Other decoding errors give their errno (EOPNOTSUPP for
// seals, EEXIST for an index used twice, EINVAL); state outside preserved
// memory, which the kernel would read blindly, gives EIO.
func (h *memfdHandler) Retrieve(f *HandlerFile) (int, error) {
	var ms *kho.MemfdSer
	var err error
	if in, ok := f.Private.(*incomingMemfd); ok {
		in.tried = true
		in.pages.mu.Lock()
		ms, err = in.pages.r.ReadMemfd(h.Compatible(), f.Data)
		in.pages.mu.Unlock()
	} else {
		ms, err = kho.ReadMemfd(f.Mem, h.Compatible(), f.Data)
	}
	if err != nil {
		return -1, retrieveErrno(err)
	}
	// The copy the Kexec made of a large file becomes the file (its
	// pages are the image's); other files are made anew from the image.
	if b, ok := ms.Backing(f.Mem).(*memfdBacking); ok {
		if fd := b.take(); fd >= 0 {
			if err := setupMemfd(fd, ms); err != nil {
				unix.Close(fd)
				return -1, err
			}
			return fd, nil
		}
	}
	fd, err := memfdCreateExec(h.retrieveFlags())
	if err != nil {
		return -1, err
	}
	if err := fillMemfd(fd, ms, f.Mem); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// retrieveFlags are the memfd_create flags of a retrieved memfd.
func (h *memfdHandler) retrieveFlags() int {
	flags := unix.MFD_CLOEXEC
	if h.v2() {
		flags |= unix.MFD_ALLOW_SEALING
	}
	return flags
}

// memfdCreateExec makes the retrieved memfd executable, as the kernel's
// memfd_alloc_file does; MFD_EXEC is refused with EINVAL by kernels older
// than 6.3 (which have no vm.memfd_noexec) and with EACCES when
// vm.memfd_noexec is 2: then the file is made without it.
func memfdCreateExec(flags int) (int, error) {
	fd, err := unix.MemfdCreate("", flags|unix.MFD_EXEC)
	if err == unix.EINVAL || err == unix.EACCES {
		fd, err = unix.MemfdCreate("", flags)
	}
	return fd, err
}

func fillMemfd(fd int, ms *kho.MemfdSer, mem *kho.Memory) error {
	if err := ms.ReadContents(mem, fdWriterAt(fd)); err != nil {
		return err
	}
	return setupMemfd(fd, ms)
}

// setupMemfd gives a retrieved memfd whose contents are in place its size,
// position and seals.
func setupMemfd(fd int, ms *kho.MemfdSer) error {
	if err := unix.Ftruncate(fd, int64(ms.Size)); err != nil {
		return err
	}
	// vfs_setpos(pos, MAX_LFS_FILESIZE), whose failure the kernel
	// ignores: a position past MAX_LFS_FILESIZE leaves it at 0.
	if ms.Pos <= math.MaxInt64 {
		if _, err := unix.Seek(fd, int64(ms.Pos), 0); err != nil {
			return err
		}
	}
	if ms.Seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, int(ms.Seals)); err != nil {
			return err
		}
	}
	return nil
}

// incomingMemfd is the Private of an incoming memfd's HandlerFile.
type incomingMemfd struct {
	pages *restoredPages
	tried bool // Retrieve ran (memfd_luo_finish's retrieve_status != 0)
}

// retrieveErrno is the errno of a decoding error at retrieve.
func retrieveErrno(err error) error {
	var de *kho.DecodeError
	if errors.As(err, &de) {
		var errno unix.Errno
		if errors.Is(de.Err, kho.ErrBadAddress) || !errors.As(de.Err, &errno) {
			return unix.EIO
		}
		return errno
	}
	return err
}

func (h *memfdHandler) CanFinish(f *HandlerFile) bool { return true }

// Finish of a file whose retrieve never ran is memfd_luo_finish: it
// restores the file's folio array, folios and memfd_luo_ser to free them,
// so no later retrieve can take them (failures are the kernel's warnings,
// not errors). After a retrieve, successful or not, there is nothing left
// to do.
func (h *memfdHandler) Finish(f *HandlerFile) {
	in, ok := f.Private.(*incomingMemfd)
	if !ok || in.tried {
		return
	}
	in.pages.mu.Lock()
	in.pages.r.DiscardMemfd(h.Compatible(), f.Data)
	in.pages.mu.Unlock()
}

// readable returns fd when it can be read, and otherwise (an O_WRONLY
// open of the memfd, which preserve accepts: the kernel reads the pages
// itself, whatever the file's mode) a new read-only fd of the same file,
// opened through /proc/self/fd, for the caller to close.
func readable(fd int) (int, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return -1, err
	}
	if fl&unix.O_ACCMODE != unix.O_WRONLY {
		return fd, nil
	}
	r, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fake: read a write-only preserved memfd through /proc/self/fd: %w", err)
	}
	return r, nil
}

// fdReaderAt and fdWriterAt read and write an fd the caller keeps owning.
type fdReaderAt int

func (fd fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(fd), p, off)
	if err == nil && n < len(p) {
		return n, io.EOF
	}
	return n, err
}

type fdWriterAt int

func (fd fdWriterAt) WriteAt(p []byte, off int64) (int, error) {
	return unix.Pwrite(int(fd), p, off)
}
