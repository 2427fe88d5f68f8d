package kho

import (
	"math"
	"math/bits"
	"syscall"
)

// PageSize is the size of a page and of a linked block (KHO_BLOCK_SIZE).
const PageSize = 4096

const pageShift = 12

// MemoryBase is the physical address of the first page a new Memory hands
// out. It is above 4 GiB, as preserved memory usually is, and never 0.
const MemoryBase = 0x100000000

// maxPFN bounds page frame numbers to the 52 bits a folio entry can hold.
const maxPFN = 1<<52 - 1

type page = [PageSize]byte

// Memory is simulated preserved physical memory: sparse 4 KiB pages at
// physical addresses. Reading or writing outside its pages fails with
// ErrBadAddress. The zero value is not usable; call NewMemory.
//
// Its pages are kept in runs, one per allocation (or per piece of an image
// file, see ReadImage), in ascending order of address: finding the page at
// an address is a binary search over the runs, and a run's freed pages are
// bits of a bitmap it has only once one of them is freed.
type Memory struct {
	// runs are ascending and only ever appended to: every new run lies
	// above all others, so an index into runs stays valid (Restorer
	// keeps its restored pages by run index).
	runs   []run
	next   uint64 // next page frame number Alloc hands out
	npages int    // pages in runs not freed
}

// run is the backing array of pages allocated together: contiguous in
// physical addresses and in the Go heap, so that a file's contents move in
// and out in few large copies (see contig). A run made by AllocBacked has
// no array: its bytes are in back.
type run struct {
	pfn   uint64   // of the first page
	n     uint64   // pages
	buf   []byte   // n pages, or nil with back
	back  Backing  // the pages' bytes, at offset (page-pfn)*PageSize
	freed []uint64 // bit i set: page i was freed; nil until one is
}

func (r *run) end() uint64 { return r.pfn + r.n }

// isFreed reports whether page i of the run was freed.
func (r *run) isFreed(i uint64) bool {
	return r.freed != nil && r.freed[i/64]&(1<<(i%64)) != 0
}

// present returns how many pages from page i of the run, at most n, are
// not freed.
func (r *run) present(i, n uint64) uint64 {
	n = min(n, r.n-i)
	if r.freed == nil {
		return n
	}
	for k := uint64(0); k < n; {
		j := i + k
		w := r.freed[j/64] >> (j % 64)
		if w != 0 {
			return min(n, k+uint64(bits.TrailingZeros64(w)))
		}
		k += 64 - j%64
	}
	return n
}

// findRun returns the index of the run holding pfn, or -1.
func (m *Memory) findRun(pfn uint64) int {
	i := m.runAbove(pfn)
	if i < len(m.runs) && m.runs[i].pfn <= pfn {
		return i
	}
	return -1
}

// runAbove returns the index of the first run that ends above pfn, or
// len(m.runs).
func (m *Memory) runAbove(pfn uint64) int {
	lo, hi := 0, len(m.runs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.runs[mid].end() <= pfn {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// locate returns the run holding page frame pfn and pfn's page index in
// it, or nil.
func (m *Memory) locate(pfn uint64) (*run, uint64) {
	i := m.findRun(pfn)
	if i < 0 {
		return nil, 0
	}
	return &m.runs[i], pfn - m.runs[i].pfn
}

// appendRun adds buf, a non-empty whole number of pages, as the pages from
// the page frame pfn, and reports whether it could: pfn must lie above
// every page of m (ReadImage checks that PAs ascend) and the pages within
// the 52-bit page frame space.
func (m *Memory) appendRun(pfn uint64, buf []byte) bool {
	n := uint64(len(buf) / PageSize)
	if n == 0 || uint64(len(buf))%PageSize != 0 || pfn > maxPFN+1-n {
		return false
	}
	if k := len(m.runs); k > 0 && pfn < m.runs[k-1].end() {
		return false
	}
	m.runs = append(m.runs, run{pfn: pfn, n: n, buf: buf})
	m.npages += int(n)
	m.next = max(m.next, pfn+n)
	return true
}

// contig returns, as one slice, the longest run of pages from the
// page-aligned pa, at most npages of them, that were allocated together
// (or read together from an image) and not freed; nil when pa is not page
// aligned, not in an allocated page, or npages < 1.
func (m *Memory) contig(pa uint64, npages int) []byte {
	if pa%PageSize != 0 || npages < 1 {
		return nil
	}
	r, j := m.locate(pa >> pageShift)
	if r == nil {
		return nil
	}
	n := r.present(j, uint64(npages))
	if n == 0 || r.buf == nil {
		return nil
	}
	return r.buf[j*PageSize : (j+n)*PageSize]
}

// NewMemory returns an empty memory.
func NewMemory() *Memory {
	return &Memory{next: MemoryBase >> pageShift}
}

// Alloc allocates npages zeroed, contiguous pages and returns the physical
// address of the first. Addresses increase from MemoryBase and are never
// reused, so a layout is reproducible. It panics if npages < 1 or the
// 52-bit page frame space is exhausted.
func (m *Memory) Alloc(npages int) (pa uint64) {
	m.checkAlloc("Alloc", npages)
	first := m.next
	// One backing array per allocation: no per-page allocation overhead,
	// no pointers for the collector to scan, and a file's pages in one
	// piece. It lies above every run, so it is appended.
	m.appendRun(first, make([]byte, npages*PageSize))
	return first << pageShift
}

// checkAlloc panics unless npages more pages fit, as Alloc documents.
func (m *Memory) checkAlloc(op string, npages int) {
	if npages < 1 {
		panic("kho: Memory." + op + " of fewer than one page")
	}
	if m.next+uint64(npages) > maxPFN+1 || npages > math.MaxInt/PageSize {
		panic("kho: physical address space exhausted")
	}
}

// Free releases npages pages starting at pa (which should be page aligned;
// its offset within the page is ignored). Pages that are not allocated are
// skipped. Freed addresses are not handed out again.
func (m *Memory) Free(pa uint64, npages int) {
	if npages < 1 {
		return
	}
	lo := pa >> pageShift
	hi := lo + uint64(npages) // below 2^64: lo < 2^52, npages < 2^63
	for i := m.runAbove(lo); i < len(m.runs) && m.runs[i].pfn < hi; i++ {
		r := &m.runs[i]
		n := r.n
		from, to := max(lo, r.pfn)-r.pfn, min(hi, r.end())-r.pfn
		for j := from; j < to; j++ {
			if r.isFreed(j) {
				continue
			}
			if r.freed == nil {
				r.freed = make([]uint64, (n+63)/64)
			}
			r.freed[j/64] |= 1 << (j % 64)
			m.npages--
		}
	}
}

// Pages returns the number of allocated pages.
func (m *Memory) Pages() int { return m.npages }

// PageAddrs returns the physical addresses of all pages, in ascending order.
func (m *Memory) PageAddrs() []uint64 {
	addrs := make([]uint64, 0, m.npages)
	for i := range m.runs {
		r := &m.runs[i]
		for j := uint64(0); j < r.n; j++ {
			if !r.isFreed(j) {
				addrs = append(addrs, (r.pfn+j)<<pageShift)
			}
		}
	}
	return addrs
}

// page returns the page holding pa, or nil.
func (m *Memory) page(pa uint64) *page {
	r, j := m.locate(pa >> pageShift)
	if r == nil || r.isFreed(j) || r.buf == nil {
		return nil
	}
	return (*page)(r.buf[j*PageSize:])
}

// span returns len(p) bytes at pa as a slice of one page when they lie in
// a single page, or nil.
func (m *Memory) span(pa uint64, n int) []byte {
	pg := m.page(pa)
	off := int(pa & (PageSize - 1))
	if pg == nil || n > PageSize-off {
		return nil
	}
	return pg[off : off+n]
}

// piece finds the bytes from pa, at most n > 0 of them, up to the end of
// pa's run or its first freed page after pa: the run and the offset and
// length of the bytes in it; r is nil when pa is not in an allocated page.
func (m *Memory) piece(pa uint64, n int) (r *run, off, length uint64) {
	r, j := m.locate(pa >> pageShift)
	if r == nil {
		return nil, 0, 0
	}
	off = j*PageSize + pa%PageSize
	end := r.n * PageSize
	if r.freed != nil {
		end = (j + r.present(j, (uint64(n)+pa%PageSize+PageSize-1)/PageSize)) * PageSize
	}
	if off >= end {
		return nil, 0, 0 // page j is freed
	}
	return r, off, min(end-off, uint64(n))
}

// ReadAt fills p with the bytes at physical address pa. If any byte lies
// outside the allocated pages it returns a *DecodeError wrapping
// ErrBadAddress that names the first such address, and p's contents are
// unspecified.
func (m *Memory) ReadAt(p []byte, pa uint64) error {
	return m.access(p, pa, false)
}

// WriteAt copies p to physical address pa. If any byte lies outside the
// allocated pages it returns a *DecodeError wrapping ErrBadAddress and
// writes nothing.
func (m *Memory) WriteAt(p []byte, pa uint64) error {
	if err := m.check(pa, len(p)); err != nil {
		return err
	}
	return m.access(p, pa, true)
}

// check verifies that n bytes at pa are all in allocated pages.
func (m *Memory) check(pa uint64, n int) error {
	for n > 0 {
		r, _, length := m.piece(pa, n)
		if r == nil {
			return decodeErr(pa, ErrBadAddress, "outside preserved memory")
		}
		n -= int(length)
		if n == 0 {
			return nil
		}
		next := pa + length
		if next < pa { // wrapped past the top of the address space
			return decodeErr(0, ErrBadAddress, "outside preserved memory")
		}
		pa = next
	}
	return nil
}

func (m *Memory) access(p []byte, pa uint64, write bool) error {
	for len(p) > 0 {
		r, off, length := m.piece(pa, len(p))
		if r == nil {
			return decodeErr(pa, ErrBadAddress, "outside preserved memory")
		}
		n := int(length)
		switch {
		case r.buf != nil && write:
			copy(r.buf[off:off+length], p)
		case r.buf != nil:
			copy(p, r.buf[off:off+length])
		default:
			if err := r.backAccess(p[:n], off, write); err != nil {
				return decodeErr(pa, syscall.EIO, "preserved memory backing: %v", err)
			}
		}
		p = p[n:]
		if len(p) == 0 {
			break
		}
		next := pa + uint64(n)
		if next < pa {
			return decodeErr(0, ErrBadAddress, "outside preserved memory")
		}
		pa = next
	}
	return nil
}
