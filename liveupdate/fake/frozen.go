//go:build linux

package fake

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What the fake catches of the changes the kernel refuses on a preserved
// memfd. memfd_luo_preserve (mm/memfd_luo.c) sets SHMEM_F_MAPPING_FROZEN
// and pins every page, allocating the holes (memfd_pin_folios); while it
// is set, mm/shmem.c refuses with EPERM any size change (shmem_setattr),
// a write past the end (shmem_write_begin) and every fallocate, a punched
// hole included (shmem_fallocate). Writes within the size, through write
// or a mapping, are allowed.
//
// The fake cannot refuse another process's syscalls, so at Kexec it looks
// for their traces and fails with an error matching EPERM:
//
//   - any size change: FrozenSizeError;
//   - pages released, by fallocate(PUNCH_HOLE) of whole pages or by an
//     ftruncate down and back up (the same size again, rewritten or
//     not): FrozenPagesError. Evidence is the file's block count, which
//     only a release lowers, and for files up to witnessMax bytes a
//     witness: the fake, like the kernel, allocates every page at
//     preserve, by mapping the file and locking the mapping (mlock), and
//     at Kexec reads /proc/self/pagemap: a truncate or a punched hole
//     unmaps the page from every mapping, and a rewrite does not map it
//     again. That catches an ftruncate(0) followed by a rewrite of every
//     byte, which leaves the block count as it was.
//
// It cannot catch: a hole punched within one page (the bytes are zeroed
// as by a write, no page is released); an fallocate that allocates
// without changing the size (nothing observable changes); and, without
// the witness (files larger than witnessMax, past maxWitnesses files, a
// failed mlock because of RLIMIT_MEMLOCK, no /proc, or a pagemap that
// does not show the pages just locked, as under qemu-user), a truncate
// followed by a rewrite that leaves at least as many pages as before.
// Without the witness the block count is the one before the fake's pin:
// the pages the pin faulted into holes are clean, and the kernel drops
// clean shmem pages nothing maps (on reclaim, or a write to
// /proc/sys/vm/drop_caches), which lowers the count with no release by
// the user. Pages the user's own mapping read into holes before the
// preserve are as clean: without the witness, a drop of those still
// reads as a release.
const witnessMax = 64 << 20

// maxWitnesses bounds the witness mappings a process holds at once, far
// below vm.max_map_count (65530), which the Go runtime needs too; files
// preserved beyond it have none.
const maxWitnesses = 4096

var witnesses atomic.Int64

// witness is the fake's locked mapping of a preserved memfd.
type witness struct {
	once sync.Once
	mem  []byte // nil: no witness
}

// pinPages allocates and maps every page of the memfd (size bytes), as
// the kernel's pin does, and locks the mapping. It returns nil when it
// cannot (the caller then relies on the block count).
func pinPages(fd int, size int64) *witness {
	if size <= 0 || size > witnessMax {
		return nil
	}
	if witnesses.Add(1) > maxWitnesses {
		witnesses.Add(-1)
		return nil
	}
	w := pinMap(fd, size)
	if w == nil {
		witnesses.Add(-1)
	}
	return w
}

func pinMap(fd int, size int64) *witness {
	rfd, err := readable(fd)
	if err != nil {
		return nil
	}
	if rfd != fd {
		defer unix.Close(rfd)
	}
	mem, err := unix.Mmap(rfd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	// mlock faults every page in, which allocates the holes of a shmem
	// file, and keeps them from being swapped out, which would unmap
	// them as a truncate does.
	if err := unix.Mlock(mem); err != nil {
		unix.Munmap(mem)
		return nil
	}
	w := &witness{mem: mem}
	// Every page is mapped now: a pagemap that says otherwise cannot be
	// read here (under qemu-user, whose guest addresses and byte order
	// are not the host's), and is no witness.
	if off, _ := w.released(); off >= 0 {
		unix.Munmap(mem)
		return nil
	}
	return w
}

// released returns the offset of the first page no longer mapped, or -1.
func (w *witness) released() (int64, error) {
	if w == nil || w.mem == nil {
		return -1, nil
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return -1, nil // no evidence to be had
	}
	defer pm.Close()
	ps := uintptr(os.Getpagesize())
	base := uintptr(unsafe.Pointer(unsafe.SliceData(w.mem)))
	pages := (uintptr(len(w.mem)) + ps - 1) / ps
	buf := make([]byte, 8*min(pages, 4096))
	for first := uintptr(0); first < pages; {
		n := min(pages-first, uintptr(len(buf)/8))
		if _, err := pm.ReadAt(buf[:8*n], int64((base/ps+first)*8)); err != nil {
			return -1, nil
		}
		for i := uintptr(0); i < n; i++ {
			e := binary.NativeEndian.Uint64(buf[8*i:])
			// Bit 63: present; bit 62: swapped or a migration
			// entry (the page is moving, not gone). Neither: the
			// page was unmapped, by truncate or hole punch.
			if e&(3<<62) == 0 {
				return int64((first + i) * ps), nil
			}
		}
		first += n
	}
	return -1, nil
}

func (w *witness) release() {
	if w == nil {
		return
	}
	w.once.Do(func() {
		if w.mem != nil {
			unix.Munmap(w.mem)
			w.mem = nil
			witnesses.Add(-1)
		}
	})
}
