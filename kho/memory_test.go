package kho

import (
	"bytes"
	"math"
	"reflect"
	"testing"
)

// TestMemoryFreeAcrossRuns frees a range that starts inside one
// allocation, covers another and ends inside a third, plus pages freed
// twice and pages never allocated, and checks the page count, PageAddrs,
// and that reads and writes stop at the freed pages.
func TestMemoryFreeAcrossRuns(t *testing.T) {
	m := NewMemory()
	a := m.Alloc(100) // more than 64 pages: a freed bitmap of two words
	b := m.Alloc(1)
	c := m.Alloc(3)
	if m.Pages() != 104 {
		t.Fatalf("%d pages, want 104", m.Pages())
	}
	m.Free(a+98*PageSize, 4)                // a's last two, b, c's first
	m.Free(a+99*PageSize, 3)                // again: a's last page, b and c's first
	m.Free(c+3*PageSize, 1)                 // past the last page
	m.Free(PageSize, MemoryBase/PageSize-1) // every page below a: none
	m.Free(c+PageSize*8, math.MaxInt)       // far past c: none
	m.Free(a, 0)
	m.Free(a, -1)
	if m.Pages() != 100 {
		t.Fatalf("after Free: %d pages, want 100", m.Pages())
	}
	var want []uint64
	for i := range 98 {
		want = append(want, a+uint64(i)*PageSize)
	}
	want = append(want, c+PageSize, c+2*PageSize)
	if got := m.PageAddrs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("PageAddrs %x, want %x", got, want)
	}
	if m.page(a+98*PageSize) != nil || m.page(b) != nil || m.page(c) != nil || m.page(a+97*PageSize) == nil || m.page(c+PageSize) == nil {
		t.Error("page of a freed or kept page is wrong")
	}

	// Reads and writes across the runs stop at the first freed page.
	data := bytes.Repeat([]byte{7}, 3*PageSize)
	if err := m.WriteAt(data, a+96*PageSize); err == nil {
		t.Error("WriteAt across a freed page succeeded")
	}
	if m.page(a + 96*PageSize)[0] != 0 {
		t.Error("failed WriteAt wrote")
	}
	err := m.ReadAt(make([]byte, 3*PageSize), a+96*PageSize+1)
	expectDecodeErr(t, err, ErrBadAddress, "outside preserved memory")
	if de := err.(*DecodeError); de.PA != a+98*PageSize {
		t.Errorf("first bad address %#x, want %#x", de.PA, a+98*PageSize)
	}
	if err := m.WriteAt(data[:2*PageSize], a+96*PageSize); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2*PageSize)
	if err := m.ReadAt(got, a+96*PageSize); err != nil || !bytes.Equal(got, data[:2*PageSize]) {
		t.Errorf("ReadAt of the pages before the freed ones: %v", err)
	}
	if m.span(c+PageSize, PageSize) == nil || m.span(c, 1) != nil || m.span(c+PageSize+1, PageSize) != nil {
		t.Error("span")
	}
}

// TestRestorerRuns claims pages of small and large runs in descending and
// ascending order, pages freed before their claim, and pages of a run
// allocated after the Restorer was made.
func TestRestorerRuns(t *testing.T) {
	m := NewMemory()
	a := m.Alloc(1)
	b := m.Alloc(200) // pages past 64 are in the bitmap's high words
	c := m.Alloc(1)
	m.Free(b+150*PageSize, 1)
	r := NewRestorer(m)
	claims := []struct {
		pa            uint64
		ok, present   bool
		restoredAfter bool
	}{
		{c, true, true, true},
		{b + 199*PageSize, true, true, true},
		{b + 65*PageSize + 17, true, true, true},
		{b + 65*PageSize, false, true, true}, // the same page again
		{b + 150*PageSize, false, false, false},
		{a, true, true, true}, // the Restorer grows down
		{a + 5, false, true, true},
		{b, true, true, true},
		{MemoryBase - PageSize, false, false, false},
		{c + PageSize, false, false, false},
	}
	for _, cl := range claims {
		if ok, present := r.claim(cl.pa); ok != cl.ok || present != cl.present {
			t.Errorf("claim(%#x) = %v, %v; want %v, %v", cl.pa, ok, present, cl.ok, cl.present)
		}
		if got := r.Restored(cl.pa); got != cl.restoredAfter {
			t.Errorf("Restored(%#x) = %v after its claim, want %v", cl.pa, got, cl.restoredAfter)
		}
	}
	for _, pa := range []uint64{b + PageSize, b + 64*PageSize, b + 66*PageSize, b + 198*PageSize} {
		if r.Restored(pa) {
			t.Errorf("Restored(%#x) of a page never claimed", pa)
		}
	}
	// Memory allocated after the Restorer was made.
	d := m.Alloc(70)
	if r.Restored(d) {
		t.Error("a new page is restored")
	}
	for _, pa := range []uint64{d + 69*PageSize, d} {
		if ok, _ := r.claim(pa); !ok {
			t.Errorf("claim(%#x) of a new page failed", pa)
		}
		if ok, present := r.claim(pa); ok || !present {
			t.Errorf("second claim(%#x) of a new page = %v, %v", pa, ok, present)
		}
	}
	// A page freed after its claim stays restored and cannot be claimed.
	m.Free(c, 1)
	if !r.Restored(c) {
		t.Error("a page freed after its claim is not restored")
	}
	if ok, present := r.claim(c); ok || present {
		t.Errorf("claim of a freed page = %v, %v", ok, present)
	}
}

// TestReadImageRuns reads an image of a long stretch of consecutive pages,
// then sparse pages: the pages come back as written, the stretch in few
// backing arrays of at most imageReadPages pages.
func TestReadImageRuns(t *testing.T) {
	m := NewMemory()
	long := m.Alloc(1000)
	for i := range 1000 {
		m.page(long + uint64(i)*PageSize)[0] = byte(i)
		m.page(long + uint64(i)*PageSize)[PageSize-1] = byte(i >> 8)
	}
	for range 300 {
		pa := m.Alloc(2)
		m.Free(pa, 1) // every other page: one page a run
		m.page(pa + PageSize)[5] = 9
	}
	var img bytes.Buffer
	if _, err := (&Image{Mem: m, Root: long}).WriteTo(&img); err != nil {
		t.Fatal(err)
	}
	read, err := ReadImage(bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(read.Mem.PageAddrs(), m.PageAddrs()) || read.Mem.Pages() != m.Pages() {
		t.Fatal("pages differ")
	}
	for _, pa := range m.PageAddrs() {
		if *read.Mem.page(pa) != *m.page(pa) {
			t.Fatalf("page %#x differs", pa)
		}
	}
	// The stretch: batches of 1, 2, 4, ..., 128, then of 256 pages.
	pieces := 0
	for pa := long; pa < long+1000*PageSize; {
		b := read.Mem.contig(pa, 1000)
		if len(b) == 0 || len(b) > imageReadPages*PageSize {
			t.Fatalf("contig(%#x) of %d bytes", pa, len(b))
		}
		pa += uint64(len(b))
		pieces++
	}
	if pieces > 12 {
		t.Errorf("1000 consecutive pages in %d pieces, want at most 12", pieces)
	}
	if len(read.Mem.runs) != pieces+300 {
		t.Errorf("%d runs, want %d", len(read.Mem.runs), pieces+300)
	}
	var out bytes.Buffer
	if _, err := read.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), img.Bytes()) {
		t.Errorf("WriteTo(ReadImage(b)) != b: %v", err)
	}
}
