//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"math"

	"golang.org/x/sys/unix"
)

// A preserved memfd's frozen size. memfd_luo_preserve (Linux's
// mm/memfd_luo.c) sets SHMEM_F_MAPPING_FROZEN on the memfd's inode until
// the file is unpreserved (its session closed); while it is set,
// mm/shmem.c answers EPERM to a size change (shmem_setattr: ftruncate,
// truncate, an open with O_TRUNC of a non-empty file), to every fallocate
// (shmem_fallocate) and to a write of a page-cache chunk that would end
// past the end (shmem_write_begin). This machine's kernel knows nothing of
// the fake's preserves, so luoemu answers those calls itself, for files
// the fake says are frozen (fake.Kernel.Frozen).
//
// Where the kernel would fail a call for another reason before it looks
// at the flag (a bad fd, a negative length, a read-only fd, a fault
// reading the arguments, RLIMIT_FSIZE, an unsupported mode or flag),
// luoemu lets the call go on, so that the kernel gives its own answer; it
// answers EPERM only where every earlier check passes, and performs a
// write that crosses the end up to where the kernel's would stop.
//
// Not modelled: the LSM hooks (security_file_truncate and the like,
// answered as though they allow); access_ok's check of the buffer's
// address range (a kernel address gets EPERM where the kernel says
// EFAULT); files of more than MAX_NON_LFS bytes without O_LARGEFILE (every
// open of a 64-bit program has it); a file whose size changes between
// luoemu's look and the kernel's (only tasks outside the tree, which
// luoemu does not serve, could change it); a task killed after luoemu has
// performed its partial write and before the answer; writes by other
// means (mmap past the end faults with SIGBUS on both kernels, io_uring,
// vmsplice, process_vm_writev and AIO are not seen); and memfds frozen
// in another luoemu's fake.

// maxRWCount is MAX_RW_COUNT, INT_MAX rounded down to a page: the most a
// single read or write moves.
var maxRWCount = int64(math.MaxInt32) &^ int64(pageSize-1)

// serveSize answers the calls that may change a file's size (sizeCalls),
// which the filter sends only with -freeze. While the fake has no memfd
// frozen, which is the common case, every one goes on at once, before
// luoemu looks at its arguments. Otherwise each call on a frozen memfd is
// answered as Linux 7.2 answers it: ftruncate and truncate to another
// size and every fallocate get EPERM (truncate's path as the task names
// it); a write entirely within the size goes on; one that starts at or
// past the end gets EPERM; one that crosses it is performed by luoemu up
// to the last page boundary at or before the end, and answered with that
// count (see writeFrozen); copy_file_range, sendfile and splice to a
// frozen memfd get EPERM when their first byte would be written at or
// past the end, and otherwise go on whole (a copy that crosses the end is
// not split: the file grows, which the fake's Kexec then reports as a
// FrozenSizeError).
func (e *emulator) serveSize(n *seccompNotif) {
	if !e.k.AnyFrozen() {
		e.cont(n)
		return
	}
	switch int(n.Data.Nr) {
	case unix.SYS_FTRUNCATE:
		e.serveFtruncate(n)
	case sysTruncate:
		e.serveTruncate(n)
	case unix.SYS_FALLOCATE:
		e.serveFallocate(n)
	case unix.SYS_WRITE, unix.SYS_PWRITE64, unix.SYS_WRITEV, unix.SYS_PWRITEV, unix.SYS_PWRITEV2:
		e.serveWrite(n)
	case unix.SYS_COPY_FILE_RANGE, unix.SYS_SENDFILE, unix.SYS_SPLICE:
		e.serveCopy(n)
	default:
		e.cont(n)
	}
}

// frozenFile is a frozen memfd the task holds: luoemu's duplicate of its
// fd (the same open file), with its status flags and a stat of it.
type frozenFile struct {
	fd    int
	flags int
	st    unix.Stat_t
}

func (f *frozenFile) close() { unix.Close(f.fd) }

// writable tells whether the open file has FMODE_WRITE (an O_PATH fd,
// whose access mode reads as O_RDONLY, has not).
func (f *frozenFile) writable() bool {
	return f.flags&unix.O_ACCMODE != unix.O_RDONLY && f.flags&unix.O_PATH == 0
}

// frozenFD returns task tid's fd as a frozenFile when it is a frozen
// memfd; nil otherwise (no such fd, or not frozen), and then nothing
// stays open.
func (e *emulator) frozenFD(tid, fd int) *frozenFile {
	dup, err := getFD(tid, fd)
	if err != nil {
		return nil
	}
	if f := e.frozenOpen(dup); f != nil {
		return f
	}
	unix.Close(dup)
	return nil
}

// frozenOpen makes fd, which luoemu owns, a frozenFile when it is a
// frozen memfd; the caller keeps fd otherwise.
func (e *emulator) frozenOpen(fd int) *frozenFile {
	if ok, err := e.k.Frozen(fd); err != nil || !ok {
		return nil
	}
	f := &frozenFile{fd: fd}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || unix.Fstat(fd, &f.st) != nil {
		return nil
	}
	f.flags = fl
	return f
}

// serveFtruncate answers ftruncate(fd, length): do_ftruncate's and
// shmem_setattr's checks in their order; EPERM for a new size.
func (e *emulator) serveFtruncate(n *seccompNotif) {
	tid := int(n.Pid)
	f := e.frozenFD(tid, int(int32(n.Data.Args[0])))
	if f == nil {
		e.cont(n)
		return
	}
	defer f.close()
	length := int64(n.Data.Args[1])
	// A negative length or a read-only fd: EINVAL.
	if length < 0 || !f.writable() {
		e.cont(n)
		return
	}
	e.truncateFrozen(n, f.st.Size, length)
}

// truncateFrozen answers a truncate of a frozen file of size bytes to
// length: the same size goes on (and succeeds); growing past the task's
// RLIMIT_FSIZE goes on (SIGXFSZ and EFBIG, from setattr_prepare, come
// before the seals and the flag); anything else is EPERM (a seal that
// forbids it says EPERM too).
func (e *emulator) truncateFrozen(n *seccompNotif, size, length int64) {
	if length == size || (length > size && uint64(length) > fsizeLimit(int(n.Pid))) {
		e.cont(n)
		return
	}
	if e.l.valid(n.ID) {
		e.logf("pid %d: %s of a frozen memfd to %d bytes (%d): EPERM", n.Pid, sysName(n), length, size)
		e.fail(n, unix.EPERM)
	}
}

// serveTruncate answers truncate(path, length), the path as the task
// names it (followed, as truncate follows it).
func (e *emulator) serveTruncate(n *seccompNotif) {
	tid := int(n.Pid)
	path, err := readString(tid, n.Data.Args[0], unix.PathMax)
	if err != nil {
		e.cont(n)
		return
	}
	f := e.frozenPath(tid, unix.AT_FDCWD, path, true)
	if f == nil {
		e.cont(n)
		return
	}
	defer f.close()
	length := int64(n.Data.Args[1])
	// do_sys_truncate: EINVAL for a negative length; vfs_truncate:
	// EACCES without write permission, before the size is looked at.
	if length < 0 || !f.taskMayWrite(tid) {
		e.cont(n)
		return
	}
	e.truncateFrozen(n, f.st.Size, length)
}

// frozenPath opens path, named by task tid relative to dirfd, with
// O_PATH in luoemu and returns it when it is a frozen memfd.
func (e *emulator) frozenPath(tid, dirfd int, path string, follow bool) *frozenFile {
	p, ok := taskPath(tid, dirfd, path)
	if !ok {
		return nil
	}
	flags := unix.O_PATH | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(p, flags, 0)
	if err != nil {
		return nil
	}
	if f := e.frozenOpen(fd); f != nil {
		return f
	}
	unix.Close(fd)
	return nil
}

// taskMayWrite tells whether task tid may open f for writing.
func (f *frozenFile) taskMayWrite(tid int) bool {
	c, ok := readCred(tid)
	return ok && c.mayWrite(&f.st)
}

// serveOpenTrunc answers an open with O_TRUNC of a frozen non-empty memfd
// (through /proc/PID/fd/N, the only name a memfd has) with EPERM, as
// do_open's handle_truncate gets it from shmem_setattr, once the open's
// earlier checks would pass: O_CREAT|O_EXCL (EEXIST), O_DIRECTORY
// (ENOTDIR), O_NOFOLLOW of the magic link (ELOOP) and the permission to
// write (EACCES) go on to the kernel. Every other open goes on.
func (e *emulator) serveOpenTrunc(n *seccompNotif, dirfd int, path string, flags uint64) {
	const exclCreat = unix.O_CREAT | unix.O_EXCL
	if !e.freeze || flags&unix.O_TRUNC == 0 || flags&exclCreat == exclCreat ||
		flags&unix.O_DIRECTORY != 0 || !e.k.AnyFrozen() {
		e.cont(n)
		return
	}
	tid := int(n.Pid)
	f := e.frozenPath(tid, dirfd, path, flags&unix.O_NOFOLLOW == 0)
	if f == nil {
		e.cont(n)
		return
	}
	defer f.close()
	if f.st.Size == 0 || !f.taskMayWrite(tid) || !e.l.valid(n.ID) {
		e.cont(n)
		return
	}
	e.logf("pid %d: open O_TRUNC of a frozen memfd (%d bytes): EPERM", tid, f.st.Size)
	e.fail(n, unix.EPERM)
}

// FALLOC_FL_* of include/uapi/linux/falloc.h.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// serveFallocate answers fallocate(fd, mode, offset, len): vfs_fallocate's
// and shmem_fallocate's checks, then EPERM whatever the mode. Every mode
// shmem does not support fails with EOPNOTSUPP before the flag is looked
// at, so only 0, KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE get EPERM.
func (e *emulator) serveFallocate(n *seccompNotif) {
	a := &n.Data.Args
	mode := uint32(a[1])
	offset, length := int64(a[2]), int64(a[3])
	switch {
	case offset < 0 || length <= 0: // EINVAL
	case mode != 0 && mode != fallocKeepSize && mode != fallocPunchHole|fallocKeepSize: // EOPNOTSUPP
	case offset > math.MaxInt64-length: // EFBIG
	default:
		tid := int(n.Pid)
		f := e.frozenFD(tid, int(int32(a[0])))
		if f == nil {
			break
		}
		defer f.close()
		if !f.writable() { // EBADF
			break
		}
		if e.l.valid(n.ID) {
			e.logf("pid %d: fallocate(mode %#x) of a frozen memfd: EPERM", tid, mode)
			e.fail(n, unix.EPERM)
		}
		return
	}
	e.cont(n)
}

// sysName names the size calls, for the log.
func sysName(n *seccompNotif) string {
	switch int(n.Data.Nr) {
	case unix.SYS_FTRUNCATE:
		return "ftruncate"
	case sysTruncate:
		return "truncate"
	case unix.SYS_FALLOCATE:
		return "fallocate"
	case unix.SYS_WRITE:
		return "write"
	case unix.SYS_PWRITE64:
		return "pwrite64"
	case unix.SYS_WRITEV:
		return "writev"
	case unix.SYS_PWRITEV:
		return "pwritev"
	case unix.SYS_PWRITEV2:
		return "pwritev2"
	case unix.SYS_COPY_FILE_RANGE:
		return "copy_file_range"
	case unix.SYS_SENDFILE:
		return "sendfile"
	case unix.SYS_SPLICE:
		return "splice"
	}
	return "syscall"
}
