package kho

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

// countingWriter is an io.WriterAt over a fixed buffer that counts its
// WriteAt calls.
type countingWriter struct {
	buf   []byte
	calls int
}

func (w *countingWriter) WriteAt(p []byte, off int64) (int, error) {
	w.calls++
	return copy(w.buf[off:], p), nil
}

// TestReadContentsRuns checks that a file's folios, laid out by WriteMemfd
// in one allocation, go out in one WriteAt; that the same folios read from
// an image file, where ReadImage keeps consecutive pages of one batch in
// one backing array, go out in one WriteAt a piece; and that with a freed
// page the folios before it still go out in one WriteAt, then
// ReadContents fails.
func TestReadContentsRuns(t *testing.T) {
	const size = 5*PageSize + 100
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>12)
	}
	m := NewMemory()
	pa, err := WriteMemfd(m, MemfdV2, 0, size, 0, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ReadMemfd(m, MemfdV2, pa)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, m *Memory, wantCalls int) {
		t.Helper()
		w := &countingWriter{buf: make([]byte, size)}
		if err := ms.ReadContents(m, w); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !bytes.Equal(w.buf, data) {
			t.Errorf("%s: contents differ", what)
		}
		if w.calls != wantCalls {
			t.Errorf("%s: %d WriteAt calls, want %d", what, w.calls, wantCalls)
		}
	}
	check("one allocation", m, 1)

	var img bytes.Buffer
	if _, err := (&Image{Mem: m, Root: pa}).WriteTo(&img); err != nil {
		t.Fatal(err)
	}
	read, err := ReadImage(&img)
	if err != nil {
		t.Fatal(err)
	}
	// The pieces the file's pages are in: ReadImage's batches grow from
	// one record, so the first pages of the image are split.
	pieces := 0
	for i := range 6 {
		p := ms.Folios[i].PFN
		if i == 0 || read.Mem.findRun(p) != read.Mem.findRun(p-1) {
			pieces++
		}
	}
	if pieces >= 6 {
		t.Fatalf("the file's 6 pages are in %d pieces after ReadImage, want fewer", pieces)
	}
	check("pages of an image file", read.Mem, pieces)

	// Pages of two allocations are not one piece: contig stops at the
	// end of the allocation.
	first := ms.Folios[0].PFN << pageShift
	if got := len(m.contig(first, 6)); got != 6*PageSize {
		t.Fatalf("contig of a fresh allocation: %d bytes, want %d", got, 6*PageSize)
	}
	if got := len(m.contig(first, 7)); got != 6*PageSize {
		t.Errorf("contig across two allocations: %d bytes, want the %d of the first", got, 6*PageSize)
	}
	if m.contig(first+1, 1) != nil || m.contig(first, 0) != nil {
		t.Error("contig of an unaligned PA or of 0 pages is not nil")
	}
	// A freed folio page: contig stops before it, the folios before it
	// are written in one WriteAt, then ReadContents fails.
	m.Free(first+5*PageSize, 1)
	if got := len(m.contig(first, 6)); got != 5*PageSize {
		t.Errorf("contig of an allocation with a freed page: %d bytes, want the %d before it", got, 5*PageSize)
	}
	if m.contig(first+5*PageSize, 1) != nil {
		t.Error("contig of a freed page is not nil")
	}
	w := &countingWriter{buf: make([]byte, size)}
	if err := ms.ReadContents(m, w); !errors.Is(err, syscall.EIO) {
		t.Fatalf("ReadContents with a freed folio page: %v, want EIO", err)
	}
	if !bytes.Equal(w.buf[:5*PageSize], data[:5*PageSize]) || w.calls != 1 {
		t.Errorf("before the freed page: %d WriteAt calls, contents equal %v; want 1, true", w.calls, bytes.Equal(w.buf[:5*PageSize], data[:5*PageSize]))
	}
}
