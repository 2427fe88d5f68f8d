package kho

import (
	"errors"
	"io"
)

// A Backing holds the bytes of pages that a Memory does not keep in its
// own arrays: a file's contents copied aside by the file itself (see
// Snapshotter), which can later become the restored file as a whole
// instead of being copied out again (see MemfdSer.Backing). Its ReadAt
// fills p whole, reading zeros past the end of its data. Memory.Close
// closes it, and so does a Restorer's DiscardMemfd of its file: Close may
// be called more than once, and from several goroutines.
type Backing interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// A Snapshotter is file contents that can copy themselves into a
// Backing. WriteMemfd (memfd-v2) calls Snapshot on contents that implement
// it, with the file's size rounded up to whole pages, and keeps the
// file's pages in the Backing it returns; when Snapshot fails, WriteMemfd
// fails.
type Snapshotter interface {
	Snapshot(size int64) (Backing, error)
}

// AllocBacked allocates npages contiguous pages whose bytes are those of
// b from offset 0, and returns the physical address of the first, as
// Alloc does. The Memory owns b from then on, and closes it in Close.
func (m *Memory) AllocBacked(b Backing, npages int) (pa uint64) {
	m.checkAlloc("AllocBacked", npages)
	first := m.next
	m.runs = append(m.runs, run{pfn: first, n: uint64(npages), back: b})
	m.npages += npages
	m.next = first + uint64(npages)
	return first << pageShift
}

// Close closes the Backings of m's backed pages (AllocBacked); reading or
// writing those pages fails afterwards. The rest of m stays usable. It
// returns the first error of a Backing's Close.
func (m *Memory) Close() error {
	var first error
	for i := range m.runs {
		r := &m.runs[i]
		if r.back == nil {
			continue
		}
		if err := r.back.Close(); err != nil && first == nil {
			first = err
		}
		r.back = closedBacking{}
	}
	return first
}

var errBackingClosed = errors.New("kho: the memory's backing is closed")

type closedBacking struct{}

func (closedBacking) ReadAt([]byte, int64) (int, error)  { return 0, errBackingClosed }
func (closedBacking) WriteAt([]byte, int64) (int, error) { return 0, errBackingClosed }
func (closedBacking) Close() error                       { return nil }

// closeBacking closes the Backing of the run holding page frame pfn, if
// it is backed: the file its pages held is gone. The run keeps the closed
// Backing, so concurrent readers of other runs see no change. It returns
// the run's end, past which the next page frame may be in another run.
func (m *Memory) closeBacking(pfn uint64) (end uint64) {
	r, _ := m.locate(pfn)
	if r == nil {
		return pfn + 1
	}
	if r.back != nil {
		r.back.Close()
	}
	return r.end()
}

// backAccess reads or writes p at byte offset off of a backed run.
func (r *run) backAccess(p []byte, off uint64, write bool) error {
	var n int
	var err error
	if write {
		n, err = r.back.WriteAt(p, int64(off))
	} else {
		n, err = r.back.ReadAt(p, int64(off))
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
		if !write {
			err = io.ErrUnexpectedEOF
		}
	}
	return err
}

// Backing returns the Backing that holds exactly the file's pages, when
// one does: a run of m made by AllocBacked for this file, every folio its
// page of the same index, in order, none freed, not closed. Otherwise it
// returns nil, and the contents are to be read with ReadContents. A
// caller may make the Backing's data the restored file itself, as the
// kernel's restored file has the preserved pages; the Backing must then
// let go of that data, so that m's Close leaves the file alone.
func (ms *MemfdSer) Backing(m *Memory) Backing {
	npages := ms.Size/PageSize + min(ms.Size%PageSize, 1)
	if npages == 0 || uint64(len(ms.Folios)) != npages {
		return nil
	}
	base := ms.Folios[0].PFN
	r, _ := m.locate(base)
	if r == nil || r.back == nil || r.pfn != base || r.n != npages || r.freed != nil {
		return nil
	}
	if _, closed := r.back.(closedBacking); closed {
		return nil
	}
	for k := range ms.Folios {
		if f := &ms.Folios[k]; f.PFN != base+uint64(k) || f.Index != uint64(k) {
			return nil
		}
	}
	return r.back
}
