package kho

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"syscall"
	"testing"
)

// TestFolioGolden checks the bit-field word against bytes produced by GCC
// for struct memfd_luo_folio_ser {u64 pfn:52; u64 flags:12; u64 index;}
// on x86-64 and s390x (pfn 0x123, flags 3, index 0x55).
func TestFolioGolden(t *testing.T) {
	f := FolioSer{PFN: 0x123, Flags: 3, Index: 0x55}
	want := map[bool]string{
		false: "2301000000003000" + "5500000000000000",
		true:  "0000000000123003" + "0000000000000055",
	}[bigEndian]
	if got := hex.EncodeToString(f.Encode()); got != want {
		t.Errorf("folio\n got %s\nwant %s", got, want)
	}
	var g FolioSer
	if err := g.Decode(f.Encode()); err != nil || g != f {
		t.Errorf("round trip %+v %v", g, err)
	}
	// Extreme values stay in their fields.
	f = FolioSer{PFN: maxPFN, Flags: 0xfff, Index: ^uint64(0)}
	if err := g.Decode(f.Encode()); err != nil || g != f {
		t.Errorf("round trip %+v %v", g, err)
	}
}

// sparse is an io.ReaderAt of a fixed length whose bytes beyond data read
// as EOF.
type sparse []byte

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s)) {
		return 0, io.EOF
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// buf is an io.WriterAt over a growing byte slice.
type buf struct{ b []byte }

func (w *buf) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

// TestGoldenMemfd checks the layout of a small memfd-v2 byte by byte.
func TestGoldenMemfd(t *testing.T) {
	m := NewMemory()
	data := make([]byte, 3*PageSize+100)
	copy(data, "first page")
	copy(data[2*PageSize:], "third page") // page 1 is a hole
	copy(data[3*PageSize:], "tail")
	pa, err := WriteMemfd(m, MemfdV2, 7, uint64(len(data)), 0x9, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	const (
		serPA   = 0x100000000
		filePA  = 0x100001000 // 4 pages of contents
		arrayPA = 0x100005000 // 4 folios fit in one page
		chunkPA = 0x100006000
	)
	if pa != serPA || m.Pages() != 7 {
		t.Fatalf("pa %#x, %d pages", pa, m.Pages())
	}
	want := map[bool]string{
		false: "0700000000000000" + "6430000000000000" + "09000000" + "00000000" + "0400000000000000" +
			"0060000001000000" + "01000000" + "0100" + "0000",
		true: "0000000000000007" + "0000000000003064" + "00000009" + "00000000" + "0000000000000004" +
			"0000000100006000" + "00000001" + "0001" + "0000",
	}[bigEndian]
	if got := hex.EncodeToString(pageBytes(t, m, serPA)[:MemfdV2SerSize]); got != want {
		t.Errorf("memfd_luo_ser\n got %s\nwant %s", got, want)
	}
	chunk := make([]byte, PageSize)
	put64(chunk, 8, arrayPA)
	if got := pageBytes(t, m, chunkPA); !bytes.Equal(got, chunk) {
		t.Errorf("chunk %x", trimZeros(got))
	}
	array := make([]byte, PageSize)
	for i := uint64(0); i < 4; i++ {
		w := ((filePA >> 12) + i) | 3<<52
		if bigEndian {
			w = ((filePA>>12)+i)<<12 | 3
		}
		put64(array, int(i)*16, w)
		put64(array, int(i)*16+8, i)
	}
	if got := pageBytes(t, m, arrayPA); !bytes.Equal(got, array) {
		t.Errorf("folio array\n got %x\nwant %x", trimZeros(got), trimZeros(array))
	}
	for i := 0; i < 4; i++ {
		want := make([]byte, PageSize)
		copy(want, data[i*PageSize:])
		if got := pageBytes(t, m, filePA+uint64(i)*PageSize); !bytes.Equal(got, want) {
			t.Errorf("page %d differs", i)
		}
	}

	// The same file as memfd-v1: 40 bytes, seals dropped, the hole only
	// UPTODATE.
	m = NewMemory()
	pa, err = WriteMemfd(m, MemfdV1, 7, uint64(len(data)), 0x9, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want = map[bool]string{
		false: "0700000000000000" + "6430000000000000" + "0400000000000000" +
			"0060000001000000" + "01000000" + "0100" + "0000",
		true: "0000000000000007" + "0000000000003064" + "0000000000000004" +
			"0000000100006000" + "00000001" + "0001" + "0000",
	}[bigEndian]
	if got := hex.EncodeToString(pageBytes(t, m, pa)[:MemfdV1SerSize+8]); got != want+"0000000000000000" {
		t.Errorf("memfd-v1 memfd_luo_ser\n got %s\nwant %s", got, want)
	}
	ms, err := ReadMemfd(m, MemfdV1, pa)
	if err != nil {
		t.Fatal(err)
	}
	var flags []uint16
	for _, f := range ms.Folios {
		flags = append(flags, f.Flags)
	}
	if !reflect.DeepEqual(flags, []uint16{3, 2, 3, 3}) {
		t.Errorf("memfd-v1 folio flags %v", flags)
	}
}

func TestMemfdRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	page := func(fill bool) []byte {
		b := make([]byte, PageSize)
		if fill {
			for i := range b {
				b[i] = byte(rng.IntN(255) + 1)
			}
		}
		return b
	}
	type tc struct {
		name  string
		data  []byte
		size  uint64
		pos   uint64
		seals uint32
	}
	holes := bytes.Join([][]byte{page(true), page(false), page(false), page(true), page(false)}, nil)
	cases := []tc{
		{name: "empty", size: 0, pos: 0},
		{name: "empty with pos", size: 0, pos: 99},
		{name: "one byte", data: []byte{0x42}, size: 1, pos: 1},
		{name: "holes", data: holes, size: uint64(len(holes)), pos: 12345, seals: 0x3f},
		{name: "partial last page", data: holes[:3*PageSize+17], size: 3*PageSize + 17},
		{name: "contents shorter than size", data: page(true)[:100], size: 5 * PageSize},
		{name: "all zero", size: 3*PageSize - 1},
		{name: "two vmalloc pages", data: bytes.Repeat(page(true), 300), size: 300 * PageSize},
	}
	for _, c := range cases {
		for _, compat := range []string{MemfdV1, MemfdV2} {
			t.Run(c.name+"/"+compat, func(t *testing.T) {
				m := NewMemory()
				pa, err := WriteMemfd(m, compat, c.pos, c.size, c.seals, sparse(c.data))
				if err != nil {
					t.Fatal(err)
				}
				ms, err := ReadMemfd(m, compat, pa)
				if err != nil {
					t.Fatal(err)
				}
				wantSeals := c.seals
				if compat == MemfdV1 {
					wantSeals = 0
				}
				if ms.Pos != c.pos || ms.Size != c.size || ms.Seals != wantSeals {
					t.Errorf("pos %d size %d seals %#x", ms.Pos, ms.Size, ms.Seals)
				}
				npages := (c.size + PageSize - 1) / PageSize
				if uint64(len(ms.Folios)) != npages {
					t.Errorf("%d folios, want %d (holes are filled)", len(ms.Folios), npages)
				}
				for i, f := range ms.Folios {
					if f.Index != uint64(i) {
						t.Fatalf("folio %d index %d", i, f.Index)
					}
				}
				out := &buf{}
				if err := ms.ReadContents(m, out); err != nil {
					t.Fatal(err)
				}
				want := make([]byte, c.size)
				copy(want, c.data)
				got := out.b
				if uint64(len(got)) < c.size {
					got = append(got, make([]byte, c.size-uint64(len(got)))...)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("contents differ (len %d, want %d)", len(got), len(want))
				}
			})
		}
	}
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteMemfdErrors(t *testing.T) {
	m := NewMemory()
	if _, err := WriteMemfd(m, "memfd-v3", 0, 1, 0, sparse(nil)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unknown compat: %v", err)
	}
	if _, err := WriteMemfd(m, MemfdV2, 0, 1, 0x40, sparse(nil)); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("unknown seal: %v", err)
	}
	if _, err := WriteMemfd(m, MemfdV2, 0, 1<<32*PageSize, 0, sparse(nil)); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("huge file: %v", err)
	}
	if _, err := WriteMemfd(m, MemfdV1, 0, 10, 0, failingReader{}); err == nil || err.Error() == "" {
		t.Errorf("reader error: %v", err)
	}
	if m.Pages() != 0 {
		t.Errorf("%d pages left after errors", m.Pages())
	}
}

// memfdLayoutOf writes a 3-page memfd and returns the addresses of its
// parts.
type memfdParts struct {
	m                 *Memory
	ser, chunk, array uint64
	pages             []uint64
}

func newMemfd(t *testing.T, compat string) *memfdParts {
	t.Helper()
	m := NewMemory()
	data := bytes.Repeat([]byte{1}, 3*PageSize)
	pa, err := WriteMemfd(m, compat, 0, uint64(len(data)), 0, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_, _, vmOff, _ := memfdLayout(compat)
	p := &memfdParts{m: m, ser: pa}
	var vm kvmalloc
	vm.decode(m.span(pa+uint64(vmOff), KHOVmallocSize))
	p.chunk = vm.first
	p.array = ne.Uint64(m.span(p.chunk+8, 8))
	for i := 0; i < 3; i++ {
		p.pages = append(p.pages, pa+PageSize*uint64(i+1))
	}
	return p
}

func (p *memfdParts) set(pa, v uint64) { ne.PutUint64(p.m.span(pa, 8), v) }

func (p *memfdParts) setFolio(i int, f FolioSer) { f.put(p.m.span(p.array+uint64(i)*16, 16)) }

func TestReadMemfdValidation(t *testing.T) {
	type tc struct {
		name    string
		compat  string
		corrupt func(p *memfdParts)
		errno   error
		rule    string
	}
	cases := []tc{
		{"seals", MemfdV2, func(p *memfdParts) { ne.PutUint32(p.m.span(p.ser+16, 4), 0x40) }, syscall.EOPNOTSUPP, "memfd seals 0x40"},
		{"nr_folios too large", MemfdV1, func(p *memfdParts) { p.set(p.ser+16, 257) }, syscall.EINVAL, "nr_folios 257 does not fit in 1 pages"},
		{"total_pages 0", MemfdV1, func(p *memfdParts) { ne.PutUint32(p.m.span(p.ser+32, 4), 0) }, syscall.EINVAL, "kho_vmalloc has 0 pages"},
		{"total_pages 2", MemfdV1, func(p *memfdParts) { ne.PutUint32(p.m.span(p.ser+32, 4), 2) }, syscall.EINVAL, "total_pages 2 but its chunks list 1"},
		{"too many pages listed", MemfdV1, func(p *memfdParts) { p.set(p.chunk+16, p.pages[0]) }, syscall.EINVAL, "chunks list more than 1 pages"},
		{"order 11", MemfdV1, func(p *memfdParts) { ne.PutUint16(p.m.span(p.ser+38, 2), 11) }, syscall.EINVAL, "order 11 above 10"},
		{"chunk outside", MemfdV1, func(p *memfdParts) { p.set(p.ser+24, 0x5000) }, syscall.EFAULT, "chunk outside"},
		{"chunk not aligned", MemfdV1, func(p *memfdParts) { p.set(p.ser+24, p.chunk+8) }, syscall.EINVAL, "chunk not page aligned"},
		{"chunk cycle", MemfdV1, func(p *memfdParts) { p.set(p.chunk, p.chunk) }, syscall.EINVAL, "chunks list more than 1 pages"},
		{"area page outside", MemfdV1, func(p *memfdParts) { p.set(p.chunk+8, 0x5000) }, syscall.EINVAL, "kho_vmalloc page 0x5000 outside"},
		{"area page is the chunk", MemfdV1, func(p *memfdParts) { p.set(p.chunk+8, p.chunk) }, syscall.EINVAL, "already restored"},
		{"folio outside", MemfdV1, func(p *memfdParts) { p.setFolio(1, FolioSer{PFN: 5, Flags: 3, Index: 1}) }, syscall.EIO, "folio 1 page 0x5000 outside"},
		{"folio twice", MemfdV1, func(p *memfdParts) { p.setFolio(1, FolioSer{PFN: p.pages[0] >> 12, Flags: 3, Index: 1}) }, syscall.EIO, "already restored"},
		{"folio is the array", MemfdV1, func(p *memfdParts) { p.setFolio(1, FolioSer{PFN: p.array >> 12, Flags: 3, Index: 1}) }, syscall.EIO, "already restored"},
		{"index past size", MemfdV2, func(p *memfdParts) { p.setFolio(2, FolioSer{PFN: p.pages[2] >> 12, Flags: 3, Index: 3}) }, syscall.EINVAL, "folio 2 index 3 not below the 3 pages"},
		{"index twice", MemfdV2, func(p *memfdParts) { p.setFolio(2, FolioSer{PFN: p.pages[2] >> 12, Flags: 3, Index: 0}) }, syscall.EEXIST, "index 0 used twice"},
		{"folio flags", MemfdV1, func(p *memfdParts) { p.setFolio(0, FolioSer{PFN: p.pages[0] >> 12, Flags: 4, Index: 0}) }, syscall.EINVAL, "flags 0x4"},
		{"ser outside", MemfdV1, func(p *memfdParts) { p.ser = 0x3000 }, syscall.EFAULT, "memfd_luo_ser outside"},
		{"ser at 0", MemfdV1, func(p *memfdParts) { p.ser = 0 }, syscall.EINVAL, "PA 0"},
		{"unknown compatible", "memfd-v9", func(*memfdParts) {}, syscall.ENOENT, `no memfd handler for compatible "memfd-v9"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			compat := c.compat
			if compat == "memfd-v9" {
				compat = MemfdV1
			}
			p := newMemfd(t, compat)
			c.corrupt(p)
			ms, err := ReadMemfd(p.m, c.compat, p.ser)
			if err == nil {
				t.Fatalf("ReadMemfd succeeded: %+v", ms)
			}
			expectDecodeErr(t, err, c.errno, c.rule)
		})
	}
}

func TestReadMemfdLeniency(t *testing.T) {
	// A PFN 0 entry is an empty slot, skipped by the kernel.
	p := newMemfd(t, MemfdV1)
	p.setFolio(1, FolioSer{})
	ms, err := ReadMemfd(p.m, MemfdV1, p.ser)
	if err != nil {
		t.Fatal(err)
	}
	out := &buf{}
	if err := ms.ReadContents(p.m, out); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{1}, 3*PageSize)
	clear(want[PageSize : 2*PageSize])
	if !bytes.Equal(out.b, want) {
		t.Error("empty slot not left as a hole")
	}
	// nr_folios 0: the kho_vmalloc is not looked at.
	p = newMemfd(t, MemfdV1)
	p.set(p.ser+16, 0)
	p.set(p.ser+24, 0xdead)
	if ms, err := ReadMemfd(p.m, MemfdV1, p.ser); err != nil || len(ms.Folios) != 0 {
		t.Errorf("nr_folios 0: %v", err)
	}
	// memfd-v2's flags word is not read (memfd_luo_retrieve ignores it).
	p = newMemfd(t, MemfdV2)
	ne.PutUint32(p.m.span(p.ser+20, 4), 1)
	if _, err := ReadMemfd(p.m, MemfdV2, p.ser); err != nil {
		t.Errorf("memfd-v2 flags 1: %v", err)
	}
	// Fewer folios than pages: the rest are holes.
	p = newMemfd(t, MemfdV2)
	p.set(p.ser+24, 1)
	if ms, err := ReadMemfd(p.m, MemfdV2, p.ser); err != nil || len(ms.Folios) != 1 {
		t.Errorf("nr_folios 1: %v", err)
	}
	// ReadContents refuses a folio it cannot find.
	bad := &MemfdSer{Size: PageSize, Folios: []FolioSer{{PFN: 5}}}
	if err := bad.ReadContents(p.m, &buf{}); !errors.Is(err, syscall.EIO) {
		t.Errorf("ReadContents of a missing page: %v", err)
	}
}

// TestVmallocChunks covers chunk boundaries without a 500 MiB file: 511
// pages fill one chunk and, as in the kernel, start an empty second one.
func TestVmallocChunks(t *testing.T) {
	for _, n := range []int{1, 510, 511, 512, 1022, 1100} {
		m := NewMemory()
		w := &writer{m: m}
		pages := make([]uint64, n)
		for i := range pages {
			pages[i] = m.Alloc(1)
		}
		first := w.vmallocChunks(pages)
		chunks := 0
		for c := first; c != 0; c = ne.Uint64(m.span(c, 8)) {
			chunks++
		}
		if want := n/VmallocChunkEntries + 1; chunks != want {
			t.Errorf("%d pages: %d chunks, want %d", n, chunks, want)
		}
		vm := kvmalloc{first: first, totalPages: uint32(n), flags: VmallocAlloc}
		got, err := NewRestorer(m).restoreVmalloc(0, &vm)
		if err != nil || !reflect.DeepEqual(got, pages) {
			t.Errorf("%d pages: restore %v", n, err)
		}
	}
}

// TestVmallocOrder reads an area described with order 1 (two-page units).
func TestVmallocOrder(t *testing.T) {
	m := NewMemory()
	a, b := m.Alloc(2), m.Alloc(2) // MemoryBase is order-1 aligned
	chunk := m.Alloc(1)
	ne.PutUint64(m.span(chunk+8, 8), a)
	ne.PutUint64(m.span(chunk+16, 8), b)
	vm := kvmalloc{first: chunk, totalPages: 4, order: 1}
	got, err := NewRestorer(m).restoreVmalloc(0, &vm)
	if err != nil || !reflect.DeepEqual(got, []uint64{a, a + PageSize, b, b + PageSize}) {
		t.Errorf("order 1: %x %v", got, err)
	}
	vm.totalPages = 3
	if _, err := NewRestorer(m).restoreVmalloc(0, &vm); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("order 1, 3 pages: %v", err)
	}
}
