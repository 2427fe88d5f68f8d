package kho

import (
	"cmp"
	"math"
	"slices"
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
type Memory struct {
	pages map[uint64]*page // by page frame number
	next  uint64           // next page frame number Alloc hands out
	runs  []run            // the backing of every allocation, ascending
}

// run is the backing array of pages allocated together: contiguous in
// physical addresses and in the Go heap, so that a file's contents move in
// and out in few large copies (see contig).
type run struct {
	pfn   uint64 // of the first page
	buf   []byte // a whole number of pages
	holey bool   // some of its pages were freed
}

func (r *run) end() uint64 { return r.pfn + uint64(len(r.buf)/PageSize) }

// findRun returns the index of the run holding pfn, or -1.
func (m *Memory) findRun(pfn uint64) int {
	i, _ := slices.BinarySearchFunc(m.runs, pfn, func(r run, pfn uint64) int {
		switch {
		case r.end() <= pfn:
			return -1
		case r.pfn > pfn:
			return 1
		}
		return 0
	})
	if i < len(m.runs) && m.runs[i].pfn <= pfn && pfn < m.runs[i].end() {
		return i
	}
	return -1
}

// addRun records a run whose pages are not in any other run.
func (m *Memory) addRun(r run) {
	if n := len(m.runs); n == 0 || m.runs[n-1].pfn < r.pfn {
		m.runs = append(m.runs, r) // the usual case: ascending addresses
		return
	}
	i, _ := slices.BinarySearchFunc(m.runs, r.pfn, func(r run, pfn uint64) int {
		return cmp.Compare(r.pfn, pfn)
	})
	m.runs = slices.Insert(m.runs, i, r)
}

// contig returns the npages pages at the page-aligned pa as one slice when
// they were allocated together and none of them was freed, or nil.
func (m *Memory) contig(pa uint64, npages int) []byte {
	pfn := pa >> pageShift
	i := m.findRun(pfn)
	if i < 0 || pa%PageSize != 0 || npages < 1 {
		return nil
	}
	r := &m.runs[i]
	if r.holey || uint64(npages) > r.end()-pfn {
		return nil
	}
	off := (pfn - r.pfn) * PageSize
	return r.buf[off : off+uint64(npages)*PageSize]
}

// NewMemory returns an empty memory.
func NewMemory() *Memory {
	return &Memory{pages: make(map[uint64]*page), next: MemoryBase >> pageShift}
}

// Alloc allocates npages zeroed, contiguous pages and returns the physical
// address of the first. Addresses increase from MemoryBase and are never
// reused, so a layout is reproducible. It panics if npages < 1 or the
// 52-bit page frame space is exhausted.
func (m *Memory) Alloc(npages int) (pa uint64) {
	if npages < 1 {
		panic("kho: Memory.Alloc of fewer than one page")
	}
	if m.next+uint64(npages) > maxPFN+1 || npages > math.MaxInt/PageSize {
		panic("kho: physical address space exhausted")
	}
	first := m.next
	m.next += uint64(npages)
	// One backing array per allocation: no per-page allocation overhead,
	// no pointers for the collector to scan, and a file's pages in one
	// piece.
	backing := make([]byte, npages*PageSize)
	for i := range npages {
		m.pages[first+uint64(i)] = (*page)(backing[i*PageSize : (i+1)*PageSize])
	}
	m.addRun(run{pfn: first, buf: backing})
	return first << pageShift
}

// Free releases npages pages starting at pa (which should be page aligned;
// its offset within the page is ignored). Pages that are not allocated are
// skipped. Freed addresses are not handed out again.
func (m *Memory) Free(pa uint64, npages int) {
	pfn := pa >> pageShift
	for i := 0; i < npages; i++ {
		p := pfn + uint64(i)
		if m.pages[p] == nil {
			continue
		}
		delete(m.pages, p)
		if r := m.findRun(p); r >= 0 {
			m.runs[r].holey = true
		}
	}
}

// Pages returns the number of allocated pages.
func (m *Memory) Pages() int { return len(m.pages) }

// PageAddrs returns the physical addresses of all pages, in ascending order.
func (m *Memory) PageAddrs() []uint64 {
	addrs := make([]uint64, 0, len(m.pages))
	for pfn := range m.pages {
		addrs = append(addrs, pfn<<pageShift)
	}
	slices.Sort(addrs)
	return addrs
}

// page returns the page holding pa, or nil.
func (m *Memory) page(pa uint64) *page {
	return m.pages[pa>>pageShift]
}

// span returns len(p) bytes at pa as a slice of one page when they lie in
// a single page, or nil.
func (m *Memory) span(pa uint64, n int) []byte {
	pg := m.pages[pa>>pageShift]
	off := int(pa & (PageSize - 1))
	if pg == nil || n > PageSize-off {
		return nil
	}
	return pg[off : off+n]
}

// setPage installs a page at a page-aligned pa (used by ReadImage).
func (m *Memory) setPage(pa uint64, pg *page) {
	pfn := pa >> pageShift
	if old := m.pages[pfn]; old != nil {
		if r := m.findRun(pfn); r >= 0 {
			m.runs[r].holey = true
		}
	} else {
		m.addRun(run{pfn: pfn, buf: pg[:]})
	}
	m.pages[pfn] = pg
	if pfn >= m.next {
		m.next = pfn + 1
	}
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
		if m.page(pa) == nil {
			return decodeErr(pa, ErrBadAddress, "outside preserved memory")
		}
		chunk := PageSize - int(pa&(PageSize-1))
		if chunk >= n {
			return nil
		}
		n -= chunk
		next := pa + uint64(chunk)
		if next < pa { // wrapped past the top of the address space
			return decodeErr(0, ErrBadAddress, "outside preserved memory")
		}
		pa = next
	}
	return nil
}

func (m *Memory) access(p []byte, pa uint64, write bool) error {
	for len(p) > 0 {
		pg := m.page(pa)
		if pg == nil {
			return decodeErr(pa, ErrBadAddress, "outside preserved memory")
		}
		off := int(pa & (PageSize - 1))
		var n int
		if write {
			n = copy(pg[off:], p)
		} else {
			n = copy(p, pg[off:])
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
