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
// in one allocation, go out in one WriteAt, and that the same folios in
// pages allocated one by one (a memory read from an image file) or in an
// allocation with a freed page give the same bytes page by page.
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
	check("pages of an image file", read.Mem, 6)

	// Pages of two allocations are not one run.
	first := ms.Folios[0].PFN << pageShift
	if m.contig(first, 6) == nil {
		t.Fatal("contig of a fresh allocation is nil")
	}
	if m.contig(first, 7) != nil {
		t.Error("contig across two allocations is not nil")
	}
	// A freed folio page: the folios before it are written, page by page
	// as their run is holey, then ReadContents fails.
	m.Free(first+5*PageSize, 1)
	if m.contig(first, 5) != nil {
		t.Error("contig of an allocation with a freed page is not nil")
	}
	w := &countingWriter{buf: make([]byte, size)}
	if err := ms.ReadContents(m, w); !errors.Is(err, syscall.EIO) {
		t.Fatalf("ReadContents with a freed folio page: %v, want EIO", err)
	}
	if !bytes.Equal(w.buf[:5*PageSize], data[:5*PageSize]) || w.calls != 5 {
		t.Errorf("before the freed page: %d WriteAt calls, contents equal %v; want 5, true", w.calls, bytes.Equal(w.buf[:5*PageSize], data[:5*PageSize]))
	}
}
