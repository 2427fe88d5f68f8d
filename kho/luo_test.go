package kho

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// pageBytes returns a copy of the page at pa.
func pageBytes(t *testing.T, m *Memory, pa uint64) []byte {
	t.Helper()
	b := make([]byte, PageSize)
	if err := m.ReadAt(b, pa); err != nil {
		t.Fatalf("ReadAt(%#x): %v", pa, err)
	}
	return b
}

func put64(b []byte, off int, v uint64) { ne.PutUint64(b[off:], v) }

func putStr(b []byte, off int, s string) { copy(b[off:], s) }

func smallState() *State {
	return &State{
		LiveupdateNum: 7,
		Sessions: []SessionState{
			{Name: "alpha", Files: []FileSer{
				{Compatible: MemfdV1, Data: 0x1234, Token: 1},
				{Compatible: MemfdV2, Data: 0x5678, Token: 0xfeedface00000002},
			}},
			{Name: "beta"},
		},
	}
}

// TestGoldenLUO checks every byte WriteLUO lays out for a small state
// against offsets computed by hand from the kernel's structs.
func TestGoldenLUO(t *testing.T) {
	m := NewMemory()
	root, err := WriteLUO(m, smallState())
	if err != nil {
		t.Fatal(err)
	}
	const (
		rootPA  = 0x100000000
		flbPA   = 0x100001000
		sessPA  = 0x100002000
		filesPA = 0x100003000
	)
	if root != rootPA || m.Pages() != 4 {
		t.Fatalf("root %#x pages %d, want %#x and 4", root, m.Pages(), uint64(rootPA))
	}

	// struct luo_ser, literally, in both byte orders.
	wantRoot := map[bool]string{
		false: "6c756f2d76350000" + "0700000000000000" + "0020000001000000" + "0010000001000000",
		true:  "6c756f2d76350000" + "0000000000000007" + "0000000100002000" + "0000000100001000",
	}[bigEndian]
	if got := hex.EncodeToString(pageBytes(t, m, rootPA)[:32]); got != wantRoot {
		t.Errorf("luo_ser\n got %s\nwant %s", got, wantRoot)
	}

	want := map[uint64][]byte{}
	for _, pa := range []uint64{rootPA, flbPA, sessPA, filesPA} {
		want[pa] = make([]byte, PageSize)
	}
	r := want[rootPA]
	putStr(r, 0, "luo-v5")
	put64(r, 8, 7)
	put64(r, 16, sessPA)
	put64(r, 24, flbPA)

	f := want[flbPA]
	put64(f, 0, 1) // pgcnt
	put64(f, 8, 0) // count

	s := want[sessPA]
	put64(s, 0, 0) // next
	put64(s, 8, 2) // count
	putStr(s, 16, "alpha")
	put64(s, 16+64, filesPA)
	put64(s, 16+72, 2)
	putStr(s, 96, "beta")
	put64(s, 96+64, 0)
	put64(s, 96+72, 0)

	fb := want[filesPA]
	put64(fb, 0, 0)
	put64(fb, 8, 2)
	putStr(fb, 16, "memfd-v1")
	put64(fb, 16+48, 0x1234)
	put64(fb, 16+56, 1)
	putStr(fb, 80, "memfd-v2")
	put64(fb, 80+48, 0x5678)
	put64(fb, 80+56, 0xfeedface00000002)

	for pa, w := range want {
		if got := pageBytes(t, m, pa); !bytes.Equal(got, w) {
			t.Errorf("page %#x differs:\n got %x\nwant %x", pa, trimZeros(got), trimZeros(w))
		}
	}

	st, err := ReadLUO(m, root)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, smallState()) {
		t.Errorf("ReadLUO = %+v", st)
	}
}

func trimZeros(b []byte) []byte { return bytes.TrimRight(b, "\x00") }

func TestStructEncodings(t *testing.T) {
	ls := LUOSer{Compatible: "luo-v5", LiveupdateNum: 1, SessionsPA: 2, FLBsPA: 3}
	var ls2 LUOSer
	if err := ls2.Decode(ls.Encode()); err != nil || ls2 != ls {
		t.Errorf("LUOSer round trip: %+v %v", ls2, err)
	}
	ss := SessionSer{Name: strings.Repeat("n", 63), FilesPA: 4, FileCount: 5}
	var ss2 SessionSer
	if err := ss2.Decode(ss.Encode()); err != nil || ss2 != ss {
		t.Errorf("SessionSer round trip: %+v %v", ss2, err)
	}
	// A name filling all 64 bytes is cut to 63, like strscpy.
	full := bytes.Repeat([]byte{'x'}, SessionSerSize)
	if err := ss2.Decode(full); err != nil || len(ss2.Name) != 63 {
		t.Errorf("unterminated name decoded to %d bytes", len(ss2.Name))
	}
	fs := FileSer{Compatible: "memfd-v1", Data: 6, Token: 7}
	var fs2 FileSer
	if err := fs2.Decode(fs.Encode()); err != nil || fs2 != fs {
		t.Errorf("FileSer round trip: %+v %v", fs2, err)
	}
	fl := FLBSer{Name: "liveupdate-test-flb-v1", Data: 8, Count: 9}
	var fl2 FLBSer
	if err := fl2.Decode(fl.Encode()); err != nil || fl2 != fl {
		t.Errorf("FLBSer round trip: %+v %v", fl2, err)
	}
	for _, d := range []interface{ Decode([]byte) error }{&ls2, &ss2, &fs2, &fl2, &FolioSer{}} {
		if err := d.Decode(make([]byte, 15)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%T.Decode(short) = %v", d, err)
		}
	}
}

func bigState(nsessions int, files func(i int) int) *State {
	st := &State{LiveupdateNum: 42}
	for i := 0; i < nsessions; i++ {
		s := SessionState{Name: fmt.Sprintf("session-%d", i)}
		for j := 0; j < files(i); j++ {
			s.Files = append(s.Files, FileSer{Compatible: MemfdV1, Data: uint64(i)<<32 | uint64(j), Token: uint64(j) * 3})
		}
		st.Sessions = append(st.Sessions, s)
	}
	return st
}

func TestRoundTripLUO(t *testing.T) {
	fileCounts := []int{0, 1, 62, 63, 64, 126, 127, 200}
	for _, n := range []int{0, 1, 50, 51, 52, 102, 103, 300} {
		st := bigState(n, func(i int) int { return fileCounts[i%len(fileCounts)] })
		st.FLBs = []FLBSer{{Name: "liveupdate-test-flb-v1", Data: 1, Count: 2}, {Name: "liveupdate-test-flb-v2", Data: 3, Count: 4}}
		m := NewMemory()
		root, err := WriteLUO(m, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadLUO(m, root)
		if err != nil {
			t.Fatalf("%d sessions: %v", n, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("%d sessions: round trip differs", n)
		}
		// Page count: root, FLB, session blocks, file blocks.
		pages := 2 + (n+SessionsPerBlock-1)/SessionsPerBlock
		for i := 0; i < n; i++ {
			c := fileCounts[i%len(fileCounts)]
			pages += (c + FilesPerBlock - 1) / FilesPerBlock
		}
		if m.Pages() != pages {
			t.Errorf("%d sessions: %d pages, want %d", n, m.Pages(), pages)
		}
	}
}

func TestEmptyState(t *testing.T) {
	m := NewMemory()
	root, err := WriteLUO(m, &State{LiveupdateNum: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ls LUOSer
	_ = ls.Decode(pageBytes(t, m, root))
	if ls.SessionsPA != 0 || ls.FLBsPA == 0 || ls.Compatible != LUOCompatible {
		t.Errorf("luo_ser %+v", ls)
	}
	st, err := ReadLUO(m, root)
	if err != nil || !reflect.DeepEqual(st, &State{LiveupdateNum: 3}) {
		t.Errorf("ReadLUO = %+v, %v", st, err)
	}
}

// TestBlockLayout checks that blocks are filled before the next is used
// and chained in order.
func TestBlockLayout(t *testing.T) {
	m := NewMemory()
	root, err := WriteLUO(m, bigState(103, func(int) int { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	var ls LUOSer
	_ = ls.Decode(pageBytes(t, m, root))
	var counts []uint64
	for pa := ls.SessionsPA; pa != 0; {
		b := pageBytes(t, m, pa)
		counts = append(counts, ne.Uint64(b[8:]))
		pa = ne.Uint64(b[0:])
	}
	if !reflect.DeepEqual(counts, []uint64{51, 51, 1}) {
		t.Errorf("block counts %v", counts)
	}
}

func TestWriteLUOValidation(t *testing.T) {
	f := func(c string, tok uint64) FileSer { return FileSer{Compatible: c, Token: tok} }
	cases := []struct {
		name string
		st   *State
		want error
	}{
		{"nil", nil, syscall.EINVAL},
		{"empty name", &State{Sessions: []SessionState{{Name: ""}}}, syscall.EINVAL},
		{"long name", &State{Sessions: []SessionState{{Name: strings.Repeat("a", 64)}}}, syscall.EINVAL},
		{"NUL in name", &State{Sessions: []SessionState{{Name: "a\x00b"}}}, syscall.EINVAL},
		{"duplicate name", &State{Sessions: []SessionState{{Name: "a"}, {Name: "a"}}}, syscall.EEXIST},
		{"duplicate token", &State{Sessions: []SessionState{{Name: "a", Files: []FileSer{f("memfd-v1", 1), f("memfd-v1", 1)}}}}, syscall.EEXIST},
		{"empty compatible", &State{Sessions: []SessionState{{Name: "a", Files: []FileSer{f("", 1)}}}}, syscall.EINVAL},
		{"long compatible", &State{Sessions: []SessionState{{Name: "a", Files: []FileSer{f(strings.Repeat("c", 48), 1)}}}}, syscall.EINVAL},
		{"too many FLBs", &State{FLBs: make([]FLBSer, MaxFLBs+1)}, syscall.ENOSPC},
		{"empty FLB name", &State{FLBs: make([]FLBSer, 1)}, syscall.EINVAL},
	}
	for _, c := range cases {
		m := NewMemory()
		_, err := WriteLUO(m, c.st)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if m.Pages() != 0 {
			t.Errorf("%s: %d pages left allocated", c.name, m.Pages())
		}
	}
	// Tokens may repeat across sessions; a 63-byte name is fine.
	ok := &State{Sessions: []SessionState{
		{Name: strings.Repeat("a", 63), Files: []FileSer{f("memfd-v1", 1)}},
		{Name: "b", Files: []FileSer{f(strings.Repeat("c", 47), 1)}},
	}}
	if _, err := WriteLUO(NewMemory(), ok); err != nil {
		t.Error(err)
	}
}

// corruption helpers

type layout struct {
	m     *Memory
	root  uint64
	ls    LUOSer
	sblk  []uint64 // session blocks
	files map[string]uint64
}

func newLayout(t *testing.T, st *State) *layout {
	t.Helper()
	m := NewMemory()
	root, err := WriteLUO(m, st)
	if err != nil {
		t.Fatal(err)
	}
	l := &layout{m: m, root: root, files: map[string]uint64{}}
	_ = l.ls.Decode(pageBytes(t, m, root))
	for pa := l.ls.SessionsPA; pa != 0; pa = l.get(pa) {
		l.sblk = append(l.sblk, pa)
		b := pageBytes(t, m, pa)
		for i := 0; i < int(ne.Uint64(b[8:])); i++ {
			var ss SessionSer
			_ = ss.Decode(b[16+i*80:])
			l.files[ss.Name] = ss.FilesPA
		}
	}
	return l
}

func (l *layout) get(pa uint64) uint64 {
	var b [8]byte
	if err := l.m.ReadAt(b[:], pa); err != nil {
		panic(err)
	}
	return ne.Uint64(b[:])
}

func (l *layout) set(pa, v uint64) {
	var b [8]byte
	ne.PutUint64(b[:], v)
	if err := l.m.WriteAt(b[:], pa); err != nil {
		panic(err)
	}
}

// sessionEntry returns the PA of session entry i of the first block.
func (l *layout) sessionEntry(i int) uint64 { return l.sblk[0] + 16 + uint64(i)*80 }

func expectDecodeErr(t *testing.T, err error, errno error, rule string) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	if !errors.Is(err, errno) {
		t.Errorf("error %q does not wrap %v", err, errno)
	}
	if !strings.Contains(err.Error(), rule) {
		t.Errorf("error %q does not mention %q", err, rule)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%#x", de.PA)) {
		t.Errorf("error %q does not name PA %#x", err, de.PA)
	}
}

func TestReadLUOValidation(t *testing.T) {
	two := func() *State {
		return &State{Sessions: []SessionState{
			{Name: "a", Files: []FileSer{{Compatible: MemfdV1, Token: 1}, {Compatible: MemfdV1, Token: 2}}},
			{Name: "b", Files: []FileSer{{Compatible: MemfdV1, Token: 1}}},
		}}
	}
	cases := []struct {
		name    string
		st      *State
		corrupt func(l *layout)
		errno   error
		rule    string
	}{
		{"compatible luo-v4", two(), func(l *layout) { _ = l.m.WriteAt([]byte("luo-v4"), l.root) }, syscall.EINVAL, `compatible "luo-v4"`},
		{"compatible unterminated", two(), func(l *layout) { _ = l.m.WriteAt([]byte("luo-v5XY"), l.root) }, syscall.EINVAL, "compatible"},
		{"root outside memory", two(), func(l *layout) { l.root = 0x7000 }, syscall.EFAULT, "luo_ser outside"},
		{"sessions outside memory", two(), func(l *layout) { l.set(l.root+16, 0x999000) }, syscall.EFAULT, "session block outside"},
		{"files outside memory", two(), func(l *layout) { l.set(l.sessionEntry(0)+64, 0x999000) }, syscall.EFAULT, "file block outside"},
		{"FLB outside memory", two(), func(l *layout) { l.set(l.root+24, 0x999000) }, syscall.EFAULT, "FLB header outside"},
		{"session block not aligned", two(), func(l *layout) { l.set(l.root+16, l.ls.SessionsPA+8) }, syscall.EINVAL, "not page aligned"},
		{"session block self cycle", two(), func(l *layout) { l.set(l.sblk[0], l.sblk[0]) }, syscall.EINVAL, "session block chain has a cycle"},
		{"file block self cycle", two(), func(l *layout) { l.set(l.files["a"], l.files["a"]) }, syscall.EINVAL, "file block chain has a cycle"},
		{"session count 0", two(), func(l *layout) { l.set(l.sblk[0]+8, 0) }, syscall.EINVAL, "session block count 0 not in 1..51"},
		{"session count 52", two(), func(l *layout) { l.set(l.sblk[0]+8, 52) }, syscall.EINVAL, "session block count 52 not in 1..51"},
		{"file count 0", two(), func(l *layout) { l.set(l.files["a"]+8, 0) }, syscall.EINVAL, "file block count 0 not in 1..63"},
		{"file count 64", two(), func(l *layout) { l.set(l.files["a"]+8, 64) }, syscall.EINVAL, "file block count 64 not in 1..63"},
		{"file count mismatch", two(), func(l *layout) { l.set(l.sessionEntry(0)+72, 3) }, syscall.EINVAL, `session "a" file count 3 but its blocks hold 2`},
		{"file block shared", two(), func(l *layout) { l.set(l.sessionEntry(1)+64, l.files["a"]); l.set(l.sessionEntry(1)+72, 2) }, syscall.EINVAL, "already used by another chain"},
		{"session block as file block", two(), func(l *layout) { l.set(l.sessionEntry(1)+64, l.sblk[0]) }, syscall.EINVAL, "already used by another chain"},
		{"duplicate session name", two(), func(l *layout) { _ = l.m.WriteAt([]byte("a"), l.sessionEntry(1)) }, syscall.EEXIST, `session name "a" used twice`},
		{"FLB count too large", two(), func(l *layout) { l.set(l.ls.FLBsPA+8, 64) }, syscall.EINVAL, "FLB count 64 exceeds"},
		{"FLB pgcnt 0", two(), func(l *layout) { l.set(l.ls.FLBsPA, 0); l.set(l.ls.FLBsPA+8, 1) }, syscall.EINVAL, "FLB count 1 exceeds"},
		{"FLB entries outside", two(), func(l *layout) { l.set(l.ls.FLBsPA, 5); l.set(l.ls.FLBsPA+8, 300) }, syscall.EFAULT, "FLB entry 255 outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLayout(t, c.st)
			c.corrupt(l)
			st, err := ReadLUO(l.m, l.root)
			if err == nil {
				t.Fatalf("ReadLUO succeeded: %+v", st)
			}
			expectDecodeErr(t, err, c.errno, c.rule)
		})
	}
}

func TestReadLUOKernelLeniency(t *testing.T) {
	st := &State{Sessions: []SessionState{{Name: "a"}, {Name: "b", Files: []FileSer{{Compatible: "memfd-v1", Token: 1}}}}}
	// strncmp(compatible, "luo-v5", 8) stops at the NUL: byte 7 is not checked.
	l := newLayout(t, st)
	_ = l.m.WriteAt([]byte("luo-v5\x00X"), l.root)
	if _, err := ReadLUO(l.m, l.root); err != nil {
		t.Errorf("byte 7 of compatible checked: %v", err)
	}
	// files == 0 with a non-zero count: the kernel only warns.
	l = newLayout(t, st)
	l.set(l.sessionEntry(0)+72, 5)
	got, err := ReadLUO(l.m, l.root)
	if err != nil || len(got.Sessions[0].Files) != 0 {
		t.Errorf("files=0 count=5: %v %+v", err, got)
	}
	// An unknown handler is not the codec's business (the kernel fails
	// with ENOENT when it looks the handler up).
	l = newLayout(t, st)
	_ = l.m.WriteAt([]byte("nosuch-v9\x00"), l.files["b"]+16)
	if got, err := ReadLUO(l.m, l.root); err != nil || got.Sessions[1].Files[0].Compatible != "nosuch-v9" {
		t.Errorf("unknown handler: %v", err)
	}
	// A 64-byte unterminated name is cut to 63 bytes, as strscpy does.
	l = newLayout(t, st)
	_ = l.m.WriteAt(bytes.Repeat([]byte{'z'}, 64), l.sessionEntry(0))
	if got, err := ReadLUO(l.m, l.root); err != nil || got.Sessions[0].Name != strings.Repeat("z", 63) {
		t.Errorf("unterminated name: %v", err)
	}
	// flbs_pa 0: no FLBs.
	l = newLayout(t, st)
	l.set(l.root+24, 0)
	if got, err := ReadLUO(l.m, l.root); err != nil || got.FLBs != nil {
		t.Errorf("flbs_pa 0: %v", err)
	}
}

// chainState builds, by hand, a luo_ser whose session chain has n blocks of
// one session each, and returns the memory, the root and the blocks.
func chainState(n int) (*Memory, uint64, []uint64) {
	m := NewMemory()
	root := m.Alloc(1)
	first := m.Alloc(n)
	blocks := make([]uint64, n)
	for i := range blocks {
		pa := first + uint64(i)*PageSize
		blocks[i] = pa
		b := m.span(pa, PageSize)
		if i+1 < n {
			ne.PutUint64(b[0:], pa+PageSize)
		}
		ne.PutUint64(b[8:], 1)
		copy(b[16:], fmt.Sprintf("s%d", i))
	}
	ls := LUOSer{Compatible: LUOCompatible, SessionsPA: first}
	copy(m.span(root, LUOSerSize), ls.Encode())
	return m, root, blocks
}

func TestBlockLimits(t *testing.T) {
	// One chain of 20001 blocks; shorter chains end early by a 0 next.
	m, root, blocks := chainState(2*MaxBlocks + 1)
	setNext := func(i int, v uint64) { ne.PutUint64(m.span(blocks[i], 8), v) }
	length := func(n int) {
		for i := 0; i+1 < len(blocks); i++ {
			if i+1 == n {
				setNext(i, 0)
			} else {
				setNext(i, blocks[i+1])
			}
		}
	}
	// Exactly MaxBlocks blocks is fine.
	length(MaxBlocks)
	st, err := ReadLUO(m, root)
	if err != nil || len(st.Sessions) != MaxBlocks {
		t.Fatalf("%d blocks: %v", MaxBlocks, err)
	}
	// One more: the 10001st block fails to be added (ENOSPC).
	length(MaxBlocks + 1)
	_, err = ReadLUO(m, root)
	expectDecodeErr(t, err, syscall.ENOSPC, "longer than 10000 blocks")
	// ... but its count is checked first.
	ne.PutUint64(m.span(blocks[MaxBlocks], 16)[8:], 0)
	_, err = ReadLUO(m, root)
	expectDecodeErr(t, err, syscall.EINVAL, "session block count 0")
	ne.PutUint64(m.span(blocks[MaxBlocks], 16)[8:], 1)
	// The longest chain Floyd's walk accepts still gives ENOSPC.
	length(2 * MaxBlocks)
	_, err = ReadLUO(m, root)
	expectDecodeErr(t, err, syscall.ENOSPC, "longer than 10000 blocks")
	// One more and the cycle check gives up: EINVAL.
	length(2*MaxBlocks + 1)
	_, err = ReadLUO(m, root)
	expectDecodeErr(t, err, syscall.EINVAL, "cycle check limit")
	// A long cycle.
	length(300)
	setNext(299, blocks[100])
	_, err = ReadLUO(m, root)
	expectDecodeErr(t, err, syscall.EINVAL, "cycle")
}

func TestDecodeErrorMessage(t *testing.T) {
	e := &DecodeError{PA: 0x100002000, Rule: "session block count 0 not in 1..51", Err: syscall.EINVAL}
	if got := e.Error(); got != "kho: PA 0x100002000: session block count 0 not in 1..51: invalid argument" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(e, syscall.EINVAL) {
		t.Error("Unwrap")
	}
	if !errors.Is(ErrBadAddress, syscall.EFAULT) {
		t.Error("ErrBadAddress does not wrap EFAULT")
	}
}

func TestMemory(t *testing.T) {
	m := NewMemory()
	a := m.Alloc(3)
	b := m.Alloc(1)
	if a != MemoryBase || b != a+3*PageSize || m.Pages() != 4 {
		t.Fatalf("Alloc: %#x %#x %d", a, b, m.Pages())
	}
	data := bytes.Repeat([]byte("0123456789"), 1000) // crosses pages
	if err := m.WriteAt(data, a+100); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if err := m.ReadAt(got, a+100); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt: %v", err)
	}
	// Out of range: the last byte of the 4 pages is fine, one more is not.
	if err := m.ReadAt(make([]byte, 1), a+4*PageSize-1); err != nil {
		t.Error(err)
	}
	err := m.ReadAt(make([]byte, 2), a+4*PageSize-1)
	expectDecodeErr(t, err, syscall.EFAULT, "outside preserved memory")
	if de := err.(*DecodeError); de.PA != a+4*PageSize {
		t.Errorf("first bad address %#x", de.PA)
	}
	if !errors.Is(err, ErrBadAddress) {
		t.Error("not ErrBadAddress")
	}
	// A failed write writes nothing.
	if err := m.WriteAt([]byte{1, 2}, a+4*PageSize-1); err == nil {
		t.Error("WriteAt past the end succeeded")
	}
	one := make([]byte, 1)
	_ = m.ReadAt(one, a+4*PageSize-1)
	if one[0] != 0 {
		t.Error("failed WriteAt wrote")
	}
	if err := m.ReadAt(make([]byte, 8), 0xffff_ffff_ffff_fffc); err == nil {
		t.Error("ReadAt at the top of the address space succeeded")
	}
	m.Free(a, 3)
	if m.Pages() != 1 || m.ReadAt(one, a) == nil {
		t.Error("Free")
	}
	if c := m.Alloc(1); c != b+PageSize {
		t.Errorf("freed address reused: %#x", c)
	}
	if !reflect.DeepEqual(m.PageAddrs(), []uint64{b, b + PageSize}) {
		t.Errorf("PageAddrs %x", m.PageAddrs())
	}
}

// TestSessionBlocks writes the chain Linux 7.2 leaves after a duplicate
// create at 51 sessions: a second, empty block, which the reader rejects as
// the next kernel does (kho_block_set_restore: count 0 is EINVAL).
func TestSessionBlocks(t *testing.T) {
	st := bigState(51, func(int) int { return 0 })
	st.SessionBlocks = 2
	l := newLayout(t, st)
	if len(l.sblk) != 2 {
		t.Fatalf("%d session blocks, want 2", len(l.sblk))
	}
	if c := l.get(l.sblk[0] + 8); c != 51 {
		t.Errorf("first block count %d, want 51", c)
	}
	if next, c := l.get(l.sblk[1]), l.get(l.sblk[1]+8); next != 0 || c != 0 {
		t.Errorf("second block next %#x count %d, want 0 0", next, c)
	}
	if l.m.Pages() != 4 {
		t.Errorf("%d pages, want root, FLB and two blocks", l.m.Pages())
	}
	_, err := ReadLUO(l.m, l.root)
	expectDecodeErr(t, err, syscall.EINVAL, "session block count 0 not in 1..51")

	// Blocks the sessions need anyway: nothing changes.
	st.SessionBlocks = 1
	if got, err := ReadLUO(newLayout(t, st).m, newLayout(t, st).root); err != nil || len(got.Sessions) != 51 {
		t.Errorf("SessionBlocks 1 for 51 sessions: %v", err)
	}
	// Without sessions there is no chain.
	l = newLayout(t, &State{SessionBlocks: 3})
	if l.ls.SessionsPA != 0 {
		t.Errorf("sessions_pa %#x without sessions", l.ls.SessionsPA)
	}
	// The block limit counts them.
	_, err = WriteLUO(NewMemory(), &State{Sessions: []SessionState{{Name: "a"}}, SessionBlocks: MaxBlocks + 1})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("SessionBlocks past MaxBlocks: %v, want ENOSPC", err)
	}
}

// TestReadLUOBadFLBKeepsSessions: the FLB area is decoded last, and its
// error comes with the sessions decoded (the kernel does not read it at
// boot).
func TestReadLUOBadFLBKeepsSessions(t *testing.T) {
	st := &State{Sessions: []SessionState{{Name: "a"}, {Name: "b", Files: []FileSer{{Compatible: MemfdV2, Token: 1}}}}}
	l := newLayout(t, st)
	l.set(l.ls.FLBsPA+8, 64)
	got, err := ReadLUO(l.m, l.root)
	expectDecodeErr(t, err, syscall.EINVAL, "FLB count 64 exceeds")
	if got == nil || !reflect.DeepEqual(got.Sessions, st.Sessions) || got.FLBs != nil {
		t.Errorf("state with the FLB error: %+v", got)
	}
	// Other errors come alone.
	l = newLayout(t, st)
	l.set(l.sessionEntry(1)+72, 3)
	if got, err := ReadLUO(l.m, l.root); err == nil || got != nil {
		t.Errorf("file count mismatch: %+v, %v", got, err)
	}
}
