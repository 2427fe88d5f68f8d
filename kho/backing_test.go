package kho

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"
)

// memBacking is a Backing in a byte slice.
type memBacking struct {
	b      []byte
	closed int
}

func (m *memBacking) ReadAt(p []byte, off int64) (int, error) {
	if m.closed > 0 {
		return 0, errors.New("closed")
	}
	clear(p)
	if off < int64(len(m.b)) {
		copy(p, m.b[off:])
	}
	return len(p), nil
}

func (m *memBacking) WriteAt(p []byte, off int64) (int, error) {
	if m.closed > 0 {
		return 0, errors.New("closed")
	}
	return copy(m.b[off:], p), nil
}

func (m *memBacking) Close() error { m.closed++; return nil }

// snapshotting is contents that copy themselves into a memBacking.
type snapshotting struct {
	sparse
	made *memBacking
	err  error
}

func (s *snapshotting) Snapshot(size int64) (Backing, error) {
	if s.err != nil {
		return nil, s.err
	}
	b := make([]byte, size)
	copy(b, s.sparse)
	s.made = &memBacking{b: b}
	return s.made, nil
}

// A memfd whose contents copy themselves is written with the same image
// bytes as one read into the memory, and reads back the same; its pages
// are the Backing's, which Backing finds and Close closes.
func TestWriteMemfdBacked(t *testing.T) {
	data := make([]byte, 5*PageSize+123)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	heap, backed := NewMemory(), NewMemory()
	pa1, err := WriteMemfd(heap, MemfdV2, 9, uint64(len(data)), 0, sparse(data))
	if err != nil {
		t.Fatal(err)
	}
	src := &snapshotting{sparse: data}
	pa2, err := WriteMemfd(backed, MemfdV2, 9, uint64(len(data)), 0, src)
	if err != nil {
		t.Fatal(err)
	}
	if pa1 != pa2 || src.made == nil {
		t.Fatalf("PAs %#x and %#x, backing %v", pa1, pa2, src.made)
	}
	var img1, img2 bytes.Buffer
	if _, err := (&Image{Mem: heap, Root: pa1}).WriteTo(&img1); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Image{Mem: backed, Root: pa2}).WriteTo(&img2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img1.Bytes(), img2.Bytes()) {
		t.Fatal("the backed memory's image differs from the heap memory's")
	}
	ms, err := ReadMemfd(backed, MemfdV2, pa2)
	if err != nil {
		t.Fatal(err)
	}
	var out buf
	if err := ms.ReadContents(backed, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.b, data) {
		t.Fatal("contents read from the backing differ")
	}
	if b := ms.Backing(backed); b != Backing(src.made) {
		t.Fatalf("Backing = %v, want the snapshot", b)
	}
	hms, err := ReadMemfd(heap, MemfdV2, pa1)
	if err != nil {
		t.Fatal(err)
	}
	if b := hms.Backing(heap); b != nil {
		t.Fatalf("Backing of heap pages = %v, want nil", b)
	}
	// A folio list that is not the run's pages in order has no Backing.
	hms2 := *ms
	hms2.Folios = append([]FolioSer(nil), ms.Folios...)
	hms2.Folios[1], hms2.Folios[2] = hms2.Folios[2], hms2.Folios[1]
	if b := hms2.Backing(backed); b != nil {
		t.Fatal("Backing of folios out of order")
	}
	if err := backed.Close(); err != nil || src.made.closed != 1 {
		t.Fatalf("Close = %v, backing closed %d times", err, src.made.closed)
	}
	if err := backed.ReadAt(make([]byte, 10), ms.Folios[0].PFN<<pageShift); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read after Close: %v", err)
	}
	if b := ms.Backing(backed); b != nil {
		t.Fatal("Backing after Close")
	}
	if err := backed.Close(); err != nil || src.made.closed != 1 {
		t.Fatalf("second Close = %v, backing closed %d times", err, src.made.closed)
	}
}

// memfd-v1 reads every page to tell holes apart: its contents are read,
// never snapshotted. A failing snapshot fails the write with its error.
func TestWriteMemfdSnapshotCases(t *testing.T) {
	m := NewMemory()
	src := &snapshotting{sparse: []byte("abc")}
	if _, err := WriteMemfd(m, MemfdV1, 0, 3, 0, src); err != nil || src.made != nil {
		t.Fatalf("memfd-v1: %v, snapshot %v", err, src.made)
	}
	boom := errors.New("boom")
	before := m.Pages()
	if _, err := WriteMemfd(m, MemfdV2, 0, 3, 0, &snapshotting{sparse: []byte("abc"), err: boom}); !errors.Is(err, boom) {
		t.Fatalf("failing snapshot: %v", err)
	}
	if m.Pages() != before {
		t.Fatalf("%d pages after a failed write, want %d", m.Pages(), before)
	}
	var _ io.ReaderAt = src
}
