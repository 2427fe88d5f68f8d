//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// spliceFAll is SPLICE_F_ALL: the flags splice(2) takes.
const spliceFAll = 0x0f

// serveCopy answers copy_file_range, sendfile and splice whose output is
// a frozen memfd: EPERM when the first byte would be written at or past
// the end (every byte the copy writes lies there), once the kernel's
// checks that come first pass; otherwise the copy goes on whole. A copy
// that starts within the size and crosses the end is not split, as the
// kernel's would be at the last chunk boundary within the size: it grows
// the file, and the fake's Kexec then fails with a FrozenSizeError.
//
// A copy from a regular file at or past its end reads nothing and
// returns 0 in the kernel, so it goes on; a copy from a pipe or socket is
// refused at once, where the kernel would first wait for input (and then
// refuse it), and splice from an empty pipe without waiting
// (O_NONBLOCK, SPLICE_F_NONBLOCK) goes on to the kernel's EAGAIN.
func (e *emulator) serveCopy(n *seccompNotif) {
	tid := int(n.Pid)
	a := &n.Data.Args
	var inFD, outFD int
	var inOff, outOff uint64 // pointers in the task, 0 for none
	var count uint64
	switch int(n.Data.Nr) {
	case unix.SYS_COPY_FILE_RANGE:
		inFD, inOff, outFD, outOff, count = int(int32(a[0])), a[1], int(int32(a[2])), a[3], a[4]
		if uint32(a[5]) != 0 {
			e.cont(n) // EINVAL
			return
		}
	case unix.SYS_SENDFILE:
		outFD, inFD, inOff, count = int(int32(a[0])), int(int32(a[1])), a[2], a[3]
	default: // splice
		inFD, inOff, outFD, outOff, count = int(int32(a[0])), a[1], int(int32(a[2])), a[3], a[4]
		if uint32(a[5])&^spliceFAll != 0 || inOff != 0 {
			e.cont(n) // EINVAL; ESPIPE (the input must be the pipe)
			return
		}
	}
	if count == 0 {
		e.cont(n)
		return
	}
	out := e.frozenFD(tid, outFD)
	if out == nil {
		e.cont(n)
		return
	}
	defer out.close()
	in, err := getFD(tid, inFD)
	if err != nil {
		e.cont(n) // EBADF
		return
	}
	defer unix.Close(in)
	var inSt unix.Stat_t
	inFlags, err := unix.FcntlInt(uintptr(in), unix.F_GETFL, 0)
	if err != nil || unix.Fstat(in, &inSt) != nil {
		e.cont(n)
		return
	}
	// Both ends' modes: EBADF for a write-only or O_PATH input or a read-only
	// output; O_APPEND on the output is EBADF for copy_file_range and
	// EINVAL for the others.
	if inFlags&unix.O_ACCMODE == unix.O_WRONLY || inFlags&unix.O_PATH != 0 || !out.writable() || out.flags&unix.O_APPEND != 0 {
		e.cont(n)
		return
	}
	outPos, ok := copyPos(tid, out.fd, outOff)
	if !ok {
		e.cont(n)
		return
	}
	switch inSt.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		inPos, ok := copyPos(tid, in, inOff)
		if !ok || inPos >= inSt.Size {
			e.cont(n) // EFAULT, EINVAL, or nothing to read: 0
			return
		}
		if inSt.Dev == out.st.Dev && inSt.Ino == out.st.Ino {
			e.cont(n) // a copy within one file: the kernel's own checks
			return
		}
		if int(n.Data.Nr) == unix.SYS_SPLICE {
			e.cont(n) // neither end is a pipe: EINVAL
			return
		}
	case unix.S_IFIFO:
		if int(n.Data.Nr) == unix.SYS_COPY_FILE_RANGE || inOff != 0 {
			e.cont(n) // EINVAL; ESPIPE
			return
		}
		if int(n.Data.Nr) == unix.SYS_SPLICE && (inFlags&unix.O_NONBLOCK != 0 || a[5]&unix.SPLICE_F_NONBLOCK != 0) {
			if avail, err := unix.IoctlGetInt(in, unix.TIOCINQ); err == nil && avail == 0 {
				e.cont(n) // EAGAIN
				return
			}
		}
	default:
		if int(n.Data.Nr) != unix.SYS_SENDFILE || inOff != 0 {
			e.cont(n) // EINVAL; ESPIPE
			return
		}
	}
	// Within the size: the copy goes on. At or past the task's
	// RLIMIT_FSIZE: SIGXFSZ and EFBIG, from generic_write_check_limits,
	// before the flag.
	if outPos < out.st.Size || uint64(outPos) >= fsizeLimit(tid) {
		e.cont(n)
		return
	}
	if e.l.valid(n.ID) {
		e.logf("pid %d: %s to %d of a frozen memfd (%d bytes): EPERM", tid, sysName(n), outPos, out.st.Size)
		e.fail(n, unix.EPERM)
	}
}

// copyPos is a copy's position in the file fd: the loff_t at ptr in the
// task, or the file position when ptr is 0. False when the kernel would
// fail the call for it: a fault (EFAULT) or a negative position (EINVAL).
func copyPos(tid, fd int, ptr uint64) (int64, bool) {
	if ptr == 0 {
		p, err := unix.Seek(fd, 0, unix.SEEK_CUR)
		return p, err == nil
	}
	var b [8]byte
	if readMem(tid, ptr, b[:]) < len(b) {
		return 0, false
	}
	p := int64(binary.NativeEndian.Uint64(b[:]))
	return p, p >= 0
}
