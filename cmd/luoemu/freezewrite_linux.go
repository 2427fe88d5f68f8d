//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// writeChunk is the chunk generic_perform_write (mm/filemap.c) writes at
// a time, mapping_max_folio_size of the file: PAGE_SIZE for shmem in a
// kernel without CONFIG_TRANSPARENT_HUGEPAGE, such as the VM lane's
// tinyconfig kernel. (With THP, shmem files allow large folios and the
// chunk is 1<<(PAGE_SHIFT+MAX_PAGECACHE_ORDER) bytes, 2 MiB on x86_64.)
var writeChunk = int64(pageSize)

// uioMaxIOV is UIO_MAXIOV, the most segments writev takes.
const uioMaxIOV = 1024

// The pwritev2 flags a shmem file takes (kiocb_set_rw_flags): shmem files
// have no FMODE_NOWAIT, FMODE_CAN_ATOMIC_WRITE nor FOP_DONTCACHE, so
// RWF_NOWAIT, RWF_ATOMIC and RWF_DONTCACHE fail with EOPNOTSUPP, as any
// unknown flag does.
const (
	rwfNoSignal = 0x100 // RWF_NOSIGNAL
	rwfShmem    = unix.RWF_HIPRI | unix.RWF_DSYNC | unix.RWF_SYNC | unix.RWF_APPEND | unix.RWF_NOAPPEND | rwfNoSignal
)

// A seg is one of the task's buffers: an address in the task and a length.
type seg struct{ addr, len uint64 }

// A writeReq is a write(2)-family call as the kernel sees it once its
// arguments are read.
type writeReq struct {
	segs  []seg // the task's buffers, cut to MAX_RW_COUNT bytes in all
	count int64 // their total
	asked int64 // write and pwrite64's count before that cut, which rw_verify_area checks
	pos   int64 // the call's position; -1: the file position
	rwf   int   // pwritev2's flags
}

// serveWrite answers write, pwrite64, writev, pwritev and pwritev2 on a
// frozen memfd (see writeFrozen); on any other file they go on.
func (e *emulator) serveWrite(n *seccompNotif) {
	tid := int(n.Pid)
	f := e.frozenFD(tid, int(int32(n.Data.Args[0])))
	if f == nil {
		e.cont(n)
		return
	}
	defer f.close()
	w, ok := readWriteReq(tid, n)
	if !ok || !f.writable() {
		e.cont(n) // the kernel's EINVAL, EFAULT, EOPNOTSUPP or EBADF, or a write of nothing
		return
	}
	e.writeFrozen(n, f, w)
}

// readWriteReq reads the call's arguments as vfs_write, vfs_writev,
// rw_verify_area and kiocb_set_rw_flags check them; false when the kernel
// fails the call before it writes, or when it writes nothing (a count of
// 0).
func readWriteReq(tid int, n *seccompNotif) (writeReq, bool) {
	a := &n.Data.Args
	w := writeReq{pos: -1}
	nr := int(n.Data.Nr)
	switch nr {
	case unix.SYS_WRITE, unix.SYS_PWRITE64:
		if int64(a[2]) < 0 {
			return w, false // EINVAL
		}
		w.asked = int64(a[2])
		w.count = min(w.asked, maxRWCount)
		w.segs = []seg{{a[1], uint64(w.count)}}
		if nr == unix.SYS_PWRITE64 {
			if w.pos = int64(a[3]); w.pos < 0 {
				return w, false // EINVAL
			}
		}
	default:
		if nr != unix.SYS_WRITEV {
			// pos_from_hilo on a 64-bit kernel: pos_h is shifted out.
			w.pos = int64(a[3])
			if nr == unix.SYS_PWRITEV2 {
				w.rwf = int(int32(a[5]))
				both := unix.RWF_APPEND | unix.RWF_NOAPPEND
				if w.rwf&^rwfShmem != 0 || w.rwf&both == both {
					return w, false // EOPNOTSUPP, EINVAL
				}
			}
			if w.pos < 0 && (nr == unix.SYS_PWRITEV || w.pos != -1) {
				return w, false // EINVAL
			}
		}
		vlen := a[2]
		if vlen > uioMaxIOV {
			return w, false // EINVAL
		}
		raw := make([]byte, 16*vlen)
		if readMem(tid, a[1], raw) < len(raw) {
			return w, false // EFAULT
		}
		for i := range vlen {
			base := binary.NativeEndian.Uint64(raw[16*i:])
			l := int64(binary.NativeEndian.Uint64(raw[16*i+8:]))
			if l < 0 {
				return w, false // EINVAL
			}
			l = min(l, maxRWCount-w.count)
			w.segs = append(w.segs, seg{base, uint64(l)})
			w.count += l
		}
	}
	return w, w.count > 0
}

// writeFrozen answers a write of w to the frozen memfd f as
// shmem_file_write_iter does. The position is the call's, or the file's
// (the task's, shared by luoemu's duplicate), or the end with O_APPEND or
// RWF_APPEND (RWF_NOAPPEND undoes O_APPEND); the task's RLIMIT_FSIZE
// fails a write at or past it (the kernel's SIGXFSZ and EFBIG, left to
// it) and cuts one that crosses it. A write that ends within the size
// goes on to the kernel. Otherwise generic_perform_write writes chunk by
// chunk (writeChunk, from the position to the next chunk boundary, then
// whole chunks), and shmem_write_begin refuses with EPERM the first chunk
// that would end past the size: the bytes before it are written and
// their count returned, or EPERM when there are none. luoemu writes those
// bytes itself, read from the task, on its duplicate of the fd (which
// moves the shared file position as the task's write would); when the
// task's buffer faults part way, as the kernel's copy would, the bytes
// before the fault are written, or EFAULT answered when there are none.
func (e *emulator) writeFrozen(n *seccompNotif, f *frozenFile, w writeReq) {
	tid := int(n.Pid)
	size := f.st.Size
	appendMode := (f.flags&unix.O_APPEND != 0 || w.rwf&unix.RWF_APPEND != 0) && w.rwf&unix.RWF_NOAPPEND == 0
	pos := w.pos
	switch {
	case appendMode:
		pos = size
	case pos == -1:
		p, err := unix.Seek(f.fd, 0, unix.SEEK_CUR)
		if err != nil {
			e.cont(n)
			return
		}
		pos = p
	}
	count := w.count
	if pos > maxFileSize-max(count, w.asked) {
		e.cont(n) // rw_verify_area: EINVAL
		return
	}
	if lim := fsizeLimit(tid); lim != unix.RLIM_INFINITY {
		if uint64(pos) >= lim {
			e.cont(n) // SIGXFSZ, EFBIG
			return
		}
		count = min(count, int64(lim)-pos)
	}
	if pos+count <= size {
		e.cont(n)
		return
	}
	allowed := size/writeChunk*writeChunk - pos // to the last chunk boundary within the size
	if allowed <= 0 {
		if e.l.valid(n.ID) {
			e.logf("pid %d: %s of %d bytes at %d of a frozen memfd (%d bytes): EPERM", tid, sysName(n), count, pos, size)
			e.fail(n, unix.EPERM)
		}
		return
	}
	// The bytes land where the task's would: at pos, or at the file
	// position, which the write then moves (O_APPEND is not in play:
	// an appending write starts at the end). RWF_NOAPPEND keeps an
	// O_APPEND file's write at its position; the sync flags are the
	// task's. They are read and written a piece at a time, so a write of
	// up to MAX_RW_COUNT bytes needs no buffer of that size.
	off := pos
	if w.pos == -1 {
		off = -1
	}
	flags := w.rwf & (unix.RWF_DSYNC | unix.RWF_SYNC)
	if f.flags&unix.O_APPEND != 0 {
		flags |= unix.RWF_NOAPPEND
	}
	src := &taskReader{tid: tid, segs: w.segs}
	buf := make([]byte, min(allowed, writePiece))
	written := int64(0)
	var werr error
	for written < allowed {
		want := int(min(allowed-written, int64(len(buf))))
		got := src.read(buf[:want])
		if written == 0 && !e.l.valid(n.ID) {
			return // what was read may not be the task's
		}
		if got == 0 {
			werr = unix.EFAULT
			break
		}
		put, err := unix.Pwritev2(f.fd, [][]byte{buf[:got]}, off, flags)
		if put > 0 {
			written += int64(put)
			if off >= 0 {
				off += int64(put)
			}
		}
		if err != nil || put < got {
			werr = err
			break
		}
		if got < want {
			werr = unix.EFAULT // the task's buffer faulted
			break
		}
	}
	if written == 0 {
		e.fail(n, toErrno(werr))
		return
	}
	e.logf("pid %d: %s of %d bytes at %d of a frozen memfd (%d bytes): %d written", tid, sysName(n), count, pos, size, written)
	e.reply(n, written)
}

// maxFileSize is MAX_LFS_FILESIZE on 64-bit kernels.
const maxFileSize = 1<<63 - 1

// writePiece bounds what luoemu reads from a task and writes at a time.
const writePiece = 1 << 20

// A taskReader reads a task's buffers in order.
type taskReader struct {
	tid  int
	segs []seg
	off  uint64 // into segs[0]
}

// read fills buf from the buffers as far as they are readable and
// returns how many bytes it read: fewer than len(buf) at a fault or at
// the end of the buffers.
func (r *taskReader) read(buf []byte) int {
	done := 0
	for done < len(buf) && len(r.segs) > 0 {
		s := r.segs[0]
		if r.off == s.len {
			r.segs, r.off = r.segs[1:], 0
			continue
		}
		l := min(s.len-r.off, uint64(len(buf)-done))
		got := readMem(r.tid, s.addr+r.off, buf[done:done+int(l)])
		done += got
		r.off += uint64(got)
		if uint64(got) < l {
			break
		}
	}
	return done
}
