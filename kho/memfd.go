package kho

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"syscall"
)

// Compatible strings of the memfd file handler (MEMFD_LUO_FH_COMPATIBLE).
const (
	// MemfdV1 is the first memfd layout (no seals).
	MemfdV1 = "memfd-v1"
	// MemfdV2 adds seals and a flags word.
	MemfdV2 = "memfd-v2"
)

// Sizes and flags of the memfd ABI (include/linux/kho/abi/memfd.h,
// include/linux/kho/abi/kexec_handover.h).
const (
	// MemfdV1SerSize is the size of the memfd-v1 struct memfd_luo_ser.
	MemfdV1SerSize = 40
	// MemfdV2SerSize is the size of the memfd-v2 struct memfd_luo_ser.
	MemfdV2SerSize = 48
	// FolioSerSize is the size of struct memfd_luo_folio_ser.
	FolioSerSize = 16
	// KHOVmallocSize is the size of struct kho_vmalloc.
	KHOVmallocSize = 16
	// VmallocChunkEntries is KHO_VMALLOC_SIZE, the page addresses one
	// struct kho_vmalloc_chunk holds after its 8-byte next pointer.
	VmallocChunkEntries = (PageSize - 8) / 8

	// FolioDirty is MEMFD_LUO_FOLIO_DIRTY: the folio holds user data.
	FolioDirty = 1 << 0
	// FolioUptodate is MEMFD_LUO_FOLIO_UPTODATE: the folio was zeroed or
	// written.
	FolioUptodate = 1 << 1

	// MemfdAllSeals is MEMFD_LUO_ALL_SEALS, the seals memfd-v2 preserves:
	// F_SEAL_SEAL, SHRINK, GROW, WRITE, FUTURE_WRITE and EXEC.
	MemfdAllSeals = 0x3f

	// VmallocAlloc is KHO_VMALLOC_ALLOC, the kho_vmalloc flag of a vmalloc()
	// area.
	VmallocAlloc = 0x0001
	// VmallocHugeVmap is KHO_VMALLOC_HUGE_VMAP.
	VmallocHugeVmap = 0x0002

	// maxVmallocOrder is MAX_PAGE_ORDER on x86-64: the largest page order
	// KHO restores.
	maxVmallocOrder = 10
)

// MemfdSer is a decoded struct memfd_luo_ser together with its folio array.
type MemfdSer struct {
	Pos    uint64     // file position
	Size   uint64     // file size in bytes
	Seals  uint32     // memfd-v2 only: F_SEAL_* seals to re-apply
	Folios []FolioSer // one per preserved folio, in array order
}

// FolioSer is struct memfd_luo_folio_ser: a preserved folio (page-sized
// here) and where it goes in the file. An entry with PFN 0 is an empty slot
// that the kernel skips.
type FolioSer struct {
	PFN   uint64 // page frame number (52 bits)
	Flags uint16 // FolioDirty, FolioUptodate (12 bits)
	Index uint64 // page offset in the file
}

// Encode returns the 16-byte encoding of f in native byte order. The first
// word holds the C bit-fields pfn:52 and flags:12, which C compilers lay
// out from the least significant bit on little-endian machines and from the
// most significant bit on big-endian ones. Bits beyond the fields' widths
// are dropped.
func (f *FolioSer) Encode() []byte {
	b := make([]byte, FolioSerSize)
	f.put(b)
	return b
}

func (f *FolioSer) put(b []byte) {
	ne.PutUint64(b[0:], packFolioWord(f.PFN, f.Flags))
	ne.PutUint64(b[8:], f.Index)
}

// Decode sets f from the first 16 bytes of b. It fails only if b is too
// short.
func (f *FolioSer) Decode(b []byte) error {
	if len(b) < FolioSerSize {
		return short("memfd_luo_folio_ser", len(b), FolioSerSize)
	}
	f.PFN, f.Flags = unpackFolioWord(ne.Uint64(b[0:]))
	f.Index = ne.Uint64(b[8:])
	return nil
}

// bigEndian reports whether this machine stores integers big-endian.
var bigEndian = ne.Uint16([]byte{0x12, 0x34}) == 0x1234

func packFolioWord(pfn uint64, flags uint16) uint64 {
	pfn &= maxPFN
	fl := uint64(flags) & 0xfff
	if bigEndian {
		return pfn<<12 | fl
	}
	return pfn | fl<<52
}

func unpackFolioWord(w uint64) (pfn uint64, flags uint16) {
	if bigEndian {
		return w >> 12, uint16(w & 0xfff)
	}
	return w & maxPFN, uint16(w >> 52)
}

// kvmalloc is struct kho_vmalloc.
type kvmalloc struct {
	first      uint64
	totalPages uint32
	flags      uint16
	order      uint16
}

func (v *kvmalloc) put(b []byte) {
	ne.PutUint64(b[0:], v.first)
	ne.PutUint32(b[8:], v.totalPages)
	ne.PutUint16(b[12:], v.flags)
	ne.PutUint16(b[14:], v.order)
}

func (v *kvmalloc) decode(b []byte) {
	v.first = ne.Uint64(b[0:])
	v.totalPages = ne.Uint32(b[8:])
	v.flags = ne.Uint16(b[12:])
	v.order = ne.Uint16(b[14:])
}

func memfdLayout(compat string) (size, nrOff, vmOff int, ok bool) {
	switch compat {
	case MemfdV1:
		return MemfdV1SerSize, 16, 24, true
	case MemfdV2:
		return MemfdV2SerSize, 24, 32, true
	}
	return 0, 0, 0, false
}

var zeroPage page

// copyChunk is the most bytes WriteMemfd asks of one ReadAt and
// ReadContents gives one WriteAt (a read or write system call moves at
// most 2 GiB).
const copyChunk = 64 << 20

// backedChunk is the most bytes ReadContents reads from a Backing at once.
const backedChunk = 1 << 20

// WriteMemfd preserves a memfd of size bytes whose contents are read from
// contents (bytes it does not have read as zeros) the way the memfd handler
// compat (MemfdV1 or MemfdV2) does, and returns the PA of its struct
// memfd_luo_ser: the data handle of its luo_file_ser.
//
// Like the kernel, which pins, and so allocates, every page of the file, it
// writes one page-sized folio per page of the file, holes included, in
// index order. A page of zeros counts as a hole: memfd-v1 marks it
// UPTODATE only (shmem zeroes a newly allocated page and marks it up to
// date, not dirty) and other pages DIRTY|UPTODATE; memfd-v2 marks every
// folio DIRTY|UPTODATE, as the newer kernel does. The folio array is a
// vmalloc area (flags VmallocAlloc, order 0) listed in chunks.
//
// memfd-v1 does not preserve seals and ignores seals; memfd-v2 refuses
// seals outside MemfdAllSeals with EOPNOTSUPP. A file of more than 2^32-1
// pages gives EFBIG. On error nothing stays allocated (a Backing made by
// the contents' Snapshot is closed by m's Close).
//
// memfd-v2 contents that implement Snapshotter copy themselves: the
// file's pages are then a run of m backed by the copy (AllocBacked), and
// MemfdSer.Backing finds it again for the file's restore.
func WriteMemfd(m *Memory, compat string, pos, size uint64, seals uint32, contents io.ReaderAt) (pa uint64, err error) {
	serSize, nrOff, vmOff, ok := memfdLayout(compat)
	if !ok {
		return 0, fmt.Errorf("kho: unknown memfd compatible %q: %w", compat, syscall.EINVAL)
	}
	if compat == MemfdV1 {
		seals = 0
	} else if seals&^MemfdAllSeals != 0 {
		return 0, fmt.Errorf("kho: memfd seals %#x not all in %#x: %w", seals, MemfdAllSeals, syscall.EOPNOTSUPP)
	}
	npages := size/PageSize + min(size%PageSize, 1)
	if npages > 1<<32-1 || npages > math.MaxInt/PageSize {
		return 0, fmt.Errorf("kho: memfd of %d bytes has more than 2^32-1 pages: %w", size, syscall.EFBIG)
	}
	w := &writer{m: m}
	defer func() {
		if err != nil {
			w.undo()
		}
	}()

	pa = w.alloc(1)
	ser := m.span(pa, serSize)
	ne.PutUint64(ser[0:], pos)
	ne.PutUint64(ser[8:], size)
	if compat == MemfdV2 {
		ne.PutUint32(ser[16:], seals)
		ne.PutUint32(ser[20:], 0)
	}
	if size == 0 {
		return pa, nil // nr_folios 0, kho_vmalloc zeroed
	}

	// The file's pages: a copy the contents make of themselves, or
	// read straight into preserved memory.
	var first uint64
	if sn, ok := contents.(Snapshotter); ok && compat != MemfdV1 {
		b, err := sn.Snapshot(int64(npages * PageSize))
		if err != nil {
			return 0, fmt.Errorf("kho: copying memfd contents: %w", err)
		}
		first = w.m.AllocBacked(b, int(npages))
		w.allocs = append(w.allocs, first)
		w.npages = append(w.npages, int(npages))
	} else {
		first = w.alloc(int(npages))
		if err := readPages(m.contig(first, int(npages))[:size], contents); err != nil {
			return 0, err
		}
	}

	// The folio array, in a vmalloc area of its own pages.
	apages := (npages*FolioSerSize + PageSize - 1) / PageSize
	area := make([]uint64, apages)
	for i := range area {
		area[i] = w.alloc(1)
	}
	for i := uint64(0); i < npages; i++ {
		fpa := first + i*PageSize
		flags := uint16(FolioDirty | FolioUptodate)
		if compat == MemfdV1 && bytes.Equal(m.span(fpa, PageSize), zeroPage[:]) {
			flags = FolioUptodate
		}
		f := FolioSer{PFN: fpa >> pageShift, Flags: flags, Index: i}
		off := i * FolioSerSize
		f.put(m.span(area[off/PageSize]+off%PageSize, FolioSerSize))
	}
	vm := kvmalloc{first: w.vmallocChunks(area), totalPages: uint32(apages), flags: VmallocAlloc}
	ne.PutUint64(ser[nrOff:], npages)
	vm.put(ser[vmOff : vmOff+KHOVmallocSize])
	return pa, nil
}

// vmallocChunks lists the pages of an order-0 vmalloc area in a chain of
// chunks the way kho_preserve_vmalloc does, and returns the first chunk.
// As in the kernel, a full chunk is followed by a new one even when no page
// is left for it.
func (w *writer) vmallocChunks(pages []uint64) uint64 {
	first := w.alloc(1)
	chunk := w.m.span(first, PageSize)
	idx := 0
	for _, p := range pages {
		ne.PutUint64(chunk[8+idx*8:], p)
		idx++
		if idx == VmallocChunkEntries {
			next := w.alloc(1)
			ne.PutUint64(chunk[0:], next)
			chunk = w.m.span(next, PageSize)
			idx = 0
		}
	}
	return first
}

// ReadMemfd decodes and validates the struct memfd_luo_ser of handler
// compat (MemfdV1 or MemfdV2; another compatible gives ENOENT, as a missing
// handler does) at pa, with its folio array, as one file's retrieve in a
// fresh boot does: it is NewRestorer(m).ReadMemfd. To decode several files
// of one image, use one Restorer for all, which refuses pages they share.
//
// It applies the kernel's rules: memfd-v2 seals outside MemfdAllSeals give
// EOPNOTSUPP; the kho_vmalloc chunk chain must list exactly total_pages
// pages, each in preserved memory (EINVAL); every chunk, area page and
// folio page is restored once, so a page used twice fails (EINVAL for the
// area, EIO for a folio, whose restore failure the kernel reports as EIO);
// a folio page outside memory gives EIO; two folios at one index give
// EEXIST. The memfd-v2 flags word is not read, as memfd_luo_retrieve does
// not read it (writers set it to 0). It also requires what the kernel
// takes on trust: page-aligned chunks and pages, order at most 10,
// nr_folios entries fitting in the area, folio flags within
// FolioDirty|FolioUptodate, and folio indices below the number of pages of
// Size (EINVAL); a memfd_luo_ser or chunk outside memory gives
// ErrBadAddress. When nr_folios is 0 the kho_vmalloc is not read, as in
// the kernel. Allocations are bounded by the pages present.
func ReadMemfd(m *Memory, compat string, pa uint64) (*MemfdSer, error) {
	return NewRestorer(m).ReadMemfd(compat, pa)
}

func (r *Restorer) readMemfd(compat string, pa uint64) (*MemfdSer, error) {
	m := r.m
	serSize, nrOff, vmOff, ok := memfdLayout(compat)
	if !ok {
		return nil, decodeErr(pa, syscall.ENOENT, "no memfd handler for compatible %q", compat)
	}
	if pa == 0 {
		return nil, decodeErr(pa, syscall.EINVAL, "memfd_luo_ser at PA 0")
	}
	ser := make([]byte, serSize)
	r.work++
	if err := m.ReadAt(ser, pa); err != nil {
		return nil, decodeErr(pa, ErrBadAddress, "memfd_luo_ser outside preserved memory")
	}
	ms := &MemfdSer{Pos: ne.Uint64(ser[0:]), Size: ne.Uint64(ser[8:])}
	if compat == MemfdV2 {
		ms.Seals = ne.Uint32(ser[16:])
		if ms.Seals&^MemfdAllSeals != 0 {
			return nil, decodeErr(pa+16, syscall.EOPNOTSUPP, "memfd seals %#x not all in %#x", ms.Seals, MemfdAllSeals)
		}
	}
	nr := ne.Uint64(ser[nrOff:])
	if nr == 0 {
		return ms, nil
	}
	var vm kvmalloc
	vm.decode(ser[vmOff:])
	area, err := r.restoreVmalloc(pa+uint64(vmOff), &vm)
	if err != nil {
		return nil, err
	}
	if nr > uint64(len(area))*(PageSize/FolioSerSize) {
		return nil, decodeErr(pa+uint64(nrOff), syscall.EINVAL, "nr_folios %d does not fit in %d pages", nr, len(area))
	}

	filePages := ms.Size/PageSize + min(ms.Size%PageSize, 1)
	seen := newIndexSet(filePages, nr)
	ms.Folios = make([]FolioSer, nr)
	for i := range ms.Folios {
		epa := folioEntryPA(area, uint64(i))
		f := &ms.Folios[i]
		_ = f.Decode(m.span(epa, FolioSerSize))
		if f.PFN == 0 {
			r.work++
			continue // an empty slot: the kernel skips it
		}
		var err error
		fpa := f.PFN << pageShift
		if ok, present := r.claim(fpa); !ok {
			what := "already restored"
			if !present {
				what = "outside preserved memory"
			}
			err = decodeErr(epa, syscall.EIO, "folio %d page %#x %s", i, fpa, what)
		} else if f.Flags&^(FolioDirty|FolioUptodate) != 0 {
			err = decodeErr(epa, syscall.EINVAL, "folio %d flags %#x not within %#x", i, f.Flags, FolioDirty|FolioUptodate)
		} else if f.Index >= filePages {
			err = decodeErr(epa, syscall.EINVAL, "folio %d index %d not below the %d pages of size %d", i, f.Index, filePages, ms.Size)
		} else if !seen.add(f.Index) {
			err = decodeErr(epa, syscall.EEXIST, "folio %d index %d used twice", i, f.Index)
		}
		if err != nil {
			// put_folios: the folios after the failing one are restored
			// and freed.
			for j := uint64(i) + 1; j < nr; j++ {
				var g FolioSer
				_ = g.Decode(m.span(folioEntryPA(area, j), FolioSerSize))
				if g.PFN != 0 {
					r.claim(g.PFN << pageShift)
				} else {
					r.work++
				}
			}
			return nil, err
		}
	}
	return ms, nil
}

// folioEntryPA is the PA of entry i of a folio array in the pages area.
func folioEntryPA(area []uint64, i uint64) uint64 {
	off := i * FolioSerSize
	return area[off/PageSize] + off%PageSize
}

// restoreVmalloc follows kho_restore_vmalloc: it walks the chunk chain of
// vm (stored at vmPA), restoring each chunk's pages and then the chunk, and
// returns the area's pages in order. Any failure of the kernel's is EINVAL
// in memfd_luo_retrieve.
func (r *Restorer) restoreVmalloc(vmPA uint64, vm *kvmalloc) ([]uint64, error) {
	m := r.m
	if vm.order > maxVmallocOrder {
		return nil, decodeErr(vmPA+14, syscall.EINVAL, "kho_vmalloc order %d above %d", vm.order, maxVmallocOrder)
	}
	contig := uint64(1) << vm.order
	total := uint64(vm.totalPages)
	if total == 0 {
		return nil, decodeErr(vmPA+8, syscall.EINVAL, "kho_vmalloc has 0 pages")
	}
	var area []uint64
	for chunk := vm.first; chunk != 0; {
		if chunk%PageSize != 0 {
			return nil, decodeErr(chunk, syscall.EINVAL, "kho_vmalloc chunk not page aligned")
		}
		pg := m.page(chunk)
		if pg == nil {
			return nil, decodeErr(chunk, ErrBadAddress, "kho_vmalloc chunk outside preserved memory")
		}
		for i := 0; i < VmallocChunkEntries; i++ {
			r.work++
			epa := chunk + 8 + uint64(i)*8
			phys := ne.Uint64(pg[8+i*8:])
			if phys == 0 {
				break
			}
			if uint64(len(area))+contig > total {
				return nil, decodeErr(epa, syscall.EINVAL, "kho_vmalloc chunks list more than %d pages", total)
			}
			if phys%(PageSize<<vm.order) != 0 {
				return nil, decodeErr(epa, syscall.EINVAL, "kho_vmalloc page %#x not aligned to order %d", phys, vm.order)
			}
			for j := uint64(0); j < contig; j++ {
				p := phys + j*PageSize
				if p < phys {
					return nil, decodeErr(epa, syscall.EINVAL, "kho_vmalloc page %#x outside preserved memory", p)
				}
				if ok, present := r.claim(p); !ok {
					if !present {
						return nil, decodeErr(epa, syscall.EINVAL, "kho_vmalloc page %#x outside preserved memory", p)
					}
					return nil, decodeErr(epa, syscall.EINVAL, "kho_vmalloc page %#x already restored", p)
				}
				area = append(area, p)
			}
		}
		if ok, _ := r.claim(chunk); !ok {
			return nil, decodeErr(chunk, syscall.EINVAL, "kho_vmalloc chunk page already restored")
		}
		chunk = ne.Uint64(pg[0:])
	}
	if uint64(len(area)) != total {
		return nil, decodeErr(vmPA+8, syscall.EINVAL, "kho_vmalloc total_pages %d but its chunks list %d", total, len(area))
	}
	return area, nil
}

// indexSet records folio indices below limit. It uses a bitmap when that
// is no larger than a few words per folio, a map otherwise, so its size
// follows the number of folios, not a hostile file size.
type indexSet struct {
	bits []uint64
	m    map[uint64]struct{}
}

func newIndexSet(limit, n uint64) *indexSet {
	if limit/64 <= 4*n {
		return &indexSet{bits: make([]uint64, limit/64+1)}
	}
	return &indexSet{m: make(map[uint64]struct{})}
}

func (s *indexSet) add(i uint64) bool {
	if s.bits != nil {
		w, b := i/64, uint64(1)<<(i%64)
		if s.bits[w]&b != 0 {
			return false
		}
		s.bits[w] |= b
		return true
	}
	if _, dup := s.m[i]; dup {
		return false
	}
	s.m[i] = struct{}{}
	return true
}

// ReadContents writes the file's data to w: each folio's page goes to
// offset Index*PageSize, clipped to Size. Holes (indices without a folio)
// and empty slots are not written, so they stay as w has them (zero for a
// new file). It fails with a *DecodeError if a folio is outside m or past
// Size.
//
// Folios that follow each other in the array, in memory and in the file
// (as WriteMemfd lays them out) go to w in one WriteAt of up to 64 MiB for
// each piece of them that shares a backing array (one allocation, or up to
// 256 pages ReadImage read together); w sees the same bytes at the same
// offsets as with one WriteAt a page.
func (ms *MemfdSer) ReadContents(m *Memory, w io.WriterAt) error {
	// The pending run: npages folios from page frame pfn, at file offset
	// off, all checked.
	var pfn, off uint64
	var npages int
	var tmp []byte // for pages of a backed run
	flush := func() error {
		if npages == 0 {
			return nil
		}
		n := min(uint64(npages)*PageSize, ms.Size-off)
		npages = 0
		// One WriteAt for each piece of pages allocated together.
		for p := uint64(0); p < n; {
			buf := m.contig((pfn<<pageShift)+p, int((n-p+PageSize-1)/PageSize))
			if buf == nil {
				// A backed run, or pages freed by w (they were checked).
				pa := (pfn << pageShift) + p
				r, roff, length := m.piece(pa, int(min(n-p, copyChunk)))
				if r == nil || r.back == nil {
					return decodeErr(pa, syscall.EIO, "folio page freed while written out")
				}
				if tmp == nil {
					tmp = make([]byte, backedChunk)
				}
				length = min(length, backedChunk)
				if err := r.backAccess(tmp[:length], roff, false); err != nil {
					return decodeErr(pa, syscall.EIO, "preserved memory backing: %v", err)
				}
				buf = tmp[:length]
			}
			buf = buf[:min(uint64(len(buf)), n-p)]
			if _, err := w.WriteAt(buf, int64(off+p)); err != nil {
				return fmt.Errorf("kho: writing memfd contents at %d: %w", off+p, err)
			}
			p += uint64(len(buf))
		}
		return nil
	}
	for i := range ms.Folios {
		f := &ms.Folios[i]
		if f.PFN == 0 {
			continue
		}
		fpa := f.PFN << pageShift
		var err error
		foff := f.Index * PageSize
		if r, _, _ := m.piece(fpa, 1); r == nil {
			err = decodeErr(fpa, syscall.EIO, "folio %d page outside preserved memory", i)
		} else if f.Index >= ms.Size/PageSize+min(ms.Size%PageSize, 1) {
			err = decodeErr(fpa, syscall.EINVAL, "folio %d index %d past size %d", i, f.Index, ms.Size)
		} else if foff > 1<<63-1 {
			err = decodeErr(fpa, syscall.EFBIG, "folio %d offset %d too large", i, foff)
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return err
		}
		if npages > 0 && f.PFN == pfn+uint64(npages) && foff == off+uint64(npages)*PageSize && npages < copyChunk/PageSize {
			npages++
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		pfn, off, npages = f.PFN, foff, 1
	}
	return flush()
}

// readPages fills data, a file's pages, from contents, in pieces of up to
// copyChunk bytes; bytes past the contents' end are zeroed.
func readPages(data []byte, contents io.ReaderAt) error {
	size := uint64(len(data))
	for off := uint64(0); off < size; off += copyChunk {
		want := min(copyChunk, size-off)
		n, err := contents.ReadAt(data[off:off+want], int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("kho: reading memfd contents at %d: %w", off, err)
		}
		if n < int(want) {
			clear(data[off+uint64(n) : off+want])
		}
	}
	return nil
}
