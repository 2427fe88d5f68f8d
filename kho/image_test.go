package kho

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"syscall"
	"testing"
	"testing/iotest"
)

// agentImage builds the image an agent would leave behind: two sessions,
// memfds of both versions with holes and partial pages.
func agentImage(t testing.TB) (*Image, *State, map[uint64][]byte) {
	m := NewMemory()
	contents := map[uint64][]byte{}
	memfd := func(compat string, data []byte, size uint64) FileSer {
		pa, err := WriteMemfd(m, compat, uint64(len(data))/2, size, 0, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		contents[pa] = data
		return FileSer{Compatible: compat, Data: pa}
	}
	f1 := memfd(MemfdV1, []byte("hello, next kernel"), 18)
	f1.Token = 1
	f2 := memfd(MemfdV2, append(make([]byte, 2*PageSize), "after a hole"...), 2*PageSize+12)
	f2.Token = 2
	f3 := memfd(MemfdV1, nil, 0)
	f3.Token = 3
	st := &State{
		LiveupdateNum: 5,
		Sessions: []SessionState{
			{Name: "vm-1", Files: []FileSer{f1, f2}},
			{Name: "vm-2", Files: []FileSer{f3}},
			{Name: "empty"},
		},
		FLBs: []FLBSer{{Name: "liveupdate-test-flb-v1", Data: 0xabc, Count: 2}},
	}
	root, err := WriteLUO(m, st)
	if err != nil {
		t.Fatal(err)
	}
	return &Image{Mem: m, Root: root}, st, contents
}

func TestImageRoundTrip(t *testing.T) {
	img, st, contents := agentImage(t)
	var b bytes.Buffer
	n, err := img.WriteTo(&b)
	if err != nil || n != int64(b.Len()) || n != int64(32+img.Mem.Pages()*(8+PageSize)) {
		t.Fatalf("WriteTo: %d bytes, %v (buffer %d)", n, err, b.Len())
	}
	order := "01"
	if bigEndian {
		order = "02"
	}
	wantHdr := hex.EncodeToString([]byte(ImageMagic)) + "0100" + order + "0000000000" +
		fmt.Sprintf("%016x", bswap(img.Root)) + fmt.Sprintf("%016x", bswap(uint64(img.Mem.Pages())))
	if got := hex.EncodeToString(b.Bytes()[:32]); got != wantHdr {
		t.Errorf("header\n got %s\nwant %s", got, wantHdr)
	}

	// Read back through a reader that returns one byte at a time.
	img2, err := ReadImage(iotest.OneByteReader(bytes.NewReader(b.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if img2.Root != img.Root || !reflect.DeepEqual(img2.Mem.PageAddrs(), img.Mem.PageAddrs()) {
		t.Fatal("pages or root differ")
	}
	for _, pa := range img.Mem.PageAddrs() {
		if *img.Mem.page(pa) != *img2.Mem.page(pa) {
			t.Fatalf("page %#x differs", pa)
		}
	}
	// Stage 2: decode everything.
	got, err := ReadLUO(img2.Mem, img2.Root)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("ReadLUO: %v", err)
	}
	for _, s := range got.Sessions {
		for _, f := range s.Files {
			ms, err := ReadMemfd(img2.Mem, f.Compatible, f.Data)
			if err != nil {
				t.Fatal(err)
			}
			out := &buf{}
			if err := ms.ReadContents(img2.Mem, out); err != nil {
				t.Fatal(err)
			}
			want := contents[f.Data]
			if ms.Pos != uint64(len(want))/2 || !bytes.Equal(bytes.TrimRight(out.b, "\x00"), bytes.TrimRight(want, "\x00")) {
				t.Errorf("memfd %#x contents differ", f.Data)
			}
		}
	}
	// Memory allocated after reading does not collide.
	if pa := img2.Mem.Alloc(1); img.Mem.page(pa) != nil {
		t.Errorf("Alloc after ReadImage reused %#x", pa)
	}
}

func bswap(v uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return binary.BigEndian.Uint64(b[:])
}

func imageBytes(t testing.TB) []byte {
	img, _, _ := agentImage(t)
	var b bytes.Buffer
	if _, err := img.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadImageErrors(t *testing.T) {
	good := imageBytes(t)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	le := binary.LittleEndian
	other := byte(2)
	if bigEndian {
		other = 1
	}
	cases := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "truncated header"},
		{"short header", good[:20], "truncated header"},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"version", mod(func(b []byte) []byte { le.PutUint16(b[8:], 2); return b }), "version 2"},
		{"other byte order", mod(func(b []byte) []byte { b[10] = other; return b }), "other byte order"},
		{"bad order tag", mod(func(b []byte) []byte { b[10] = 9; return b }), "bad byte order tag"},
		{"reserved", mod(func(b []byte) []byte { b[13] = 1; return b }), "reserved"},
		{"too many pages", mod(func(b []byte) []byte { le.PutUint64(b[24:], MaxImagePages+1); return b }), "page count"},
		{"truncated page", good[:len(good)-1], "truncated page"},
		{"more pages claimed", mod(func(b []byte) []byte { le.PutUint64(b[24:], le.Uint64(b[24:])+1); return b }), "truncated page"},
		{"trailing", append(bytes.Clone(good), 0), "data after the last page"},
		{"PA 0", mod(func(b []byte) []byte { le.PutUint64(b[32:], 0); return b }), "at PA 0"},
		{"unaligned PA", mod(func(b []byte) []byte { le.PutUint64(b[32:], le.Uint64(b[32:])+1); return b }), "not page aligned"},
		{"descending PA", mod(func(b []byte) []byte {
			le.PutUint64(b[32+8+PageSize:], le.Uint64(b[32:]))
			return b
		}), "not above"},
	}
	for _, c := range cases {
		_, err := ReadImage(bytes.NewReader(c.data))
		if !errors.Is(err, ErrImageFormat) {
			t.Errorf("%s: %v does not wrap ErrImageFormat", c.name, err)
		} else if !bytes.Contains([]byte(err.Error()), []byte(c.msg)) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.msg)
		}
	}
	// An I/O error is passed on, not disguised as a format error.
	_, err := ReadImage(iotest.TimeoutReader(bytes.NewReader(good)))
	if err == nil || errors.Is(err, ErrImageFormat) || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("I/O error: %v", err)
	}
}

// TestReadImageBoundedAlloc: a header that claims the most pages but
// carries one costs about one page, not 16 GiB.
func TestReadImageBoundedAlloc(t *testing.T) {
	good := imageBytes(t)
	hostile := bytes.Clone(good[:32+8+PageSize])
	binary.LittleEndian.PutUint64(hostile[24:], MaxImagePages)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadImage(bytes.NewReader(hostile))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrImageFormat) {
		t.Fatal(err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Errorf("allocated %d bytes for a %d-byte image", d, len(hostile))
	}
}

type errWriter struct{ after int }

func (w *errWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, io.ErrShortWrite
	}
	n := min(len(p), w.after)
	w.after -= n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

func TestImageWriteError(t *testing.T) {
	img, _, _ := agentImage(t)
	n, err := img.WriteTo(&errWriter{after: 5000})
	if err == nil || n != 5000 {
		t.Errorf("WriteTo = %d, %v; want 5000 and an error", n, err)
	}
}

// TestImagePageLimit: WriteTo writes an image of MaxImagePages pages, the
// most ReadImage accepts, and refuses one page more without writing a
// byte, so a written image always reads back. The memory's runs of 1024
// pages share one backing array, and the writer stops after the header,
// so the test costs 4 MiB, not 16 GiB.
func TestImagePageLimit(t *testing.T) {
	m := NewMemory()
	const runPages = 1024
	shared := make([]byte, runPages*PageSize)
	for i := uint64(0); i < MaxImagePages/runPages; i++ {
		if !m.appendRun(MemoryBase>>pageShift+i*runPages, shared) {
			t.Fatalf("appendRun %d failed", i)
		}
	}
	if m.Pages() != MaxImagePages {
		t.Fatalf("%d pages, want %d", m.Pages(), MaxImagePages)
	}
	img := &Image{Mem: m, Root: MemoryBase}
	var head headWriter
	n, err := img.WriteTo(&head)
	if !errors.Is(err, io.ErrShortWrite) || n != imageHeaderSize {
		t.Fatalf("%d pages: WriteTo = %d, %v; want the writer's error after the header", MaxImagePages, n, err)
	}
	if got := binary.LittleEndian.Uint64(head.b[24:]); got != MaxImagePages {
		t.Fatalf("header page count %d, want %d", got, MaxImagePages)
	}
	// ReadImage takes that count: it fails on the missing pages, not on
	// the count.
	if _, err := ReadImage(bytes.NewReader(head.b[:])); err == nil || !bytes.Contains([]byte(err.Error()), []byte("truncated page 0 of 4194304")) {
		t.Fatalf("ReadImage of a header of %d pages: %v, want truncated page 0", MaxImagePages, err)
	}

	if !m.appendRun(MemoryBase>>pageShift+MaxImagePages, shared[:PageSize]) {
		t.Fatal("appendRun of the page past the limit failed")
	}
	var none headWriter // fails after 32 bytes, so a WriteTo that does not refuse stops early
	n, err = img.WriteTo(&none)
	if !errors.Is(err, ErrImageTooLarge) || !errors.Is(err, syscall.EFBIG) || n != 0 || none.n != 0 {
		t.Fatalf("%d pages: WriteTo = %d, %v, %d bytes written; want ErrImageTooLarge and nothing written", MaxImagePages+1, n, err, none.n)
	}
	if want := "4194305 pages"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// And ReadImage refuses that count.
	binary.LittleEndian.PutUint64(head.b[24:], MaxImagePages+1)
	if _, err := ReadImage(bytes.NewReader(head.b[:])); !errors.Is(err, ErrImageFormat) || !bytes.Contains([]byte(err.Error()), []byte("above")) {
		t.Fatalf("ReadImage of a header of %d pages: %v", MaxImagePages+1, err)
	}
}

// headWriter keeps the image header and fails every write after it.
type headWriter struct {
	b [imageHeaderSize]byte
	n int
}

func (w *headWriter) Write(p []byte) (int, error) {
	n := copy(w.b[w.n:], p)
	w.n += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}
