package kho

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// sharedMemfdImage lays out a memfd-v2 of folioPages pages and one session
// of nfiles files whose entries all name that memfd's memfd_luo_ser: the
// hostile image of issue 9, item 5.
func sharedMemfdImage(t *testing.T, nfiles, folioPages int) (*Memory, uint64, *State) {
	t.Helper()
	m := NewMemory()
	pa, err := WriteMemfd(m, MemfdV2, 0, uint64(folioPages)*PageSize, 0, sparse(nil))
	if err != nil {
		t.Fatal(err)
	}
	files := make([]FileSer, nfiles)
	for i := range files {
		files[i] = FileSer{Compatible: MemfdV2, Data: pa, Token: uint64(i)}
	}
	root, err := WriteLUO(m, &State{Sessions: []SessionState{{Name: "s", Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadLUO(m, root)
	if err != nil {
		t.Fatal(err)
	}
	return m, root, st
}

// retrieveAll retrieves every file of st through r, as the next kernel does
// when they are all retrieved, and returns the errors.
func retrieveAll(r *Restorer, root uint64, st *State) []error {
	r.RestoreLUO(root)
	var errs []error
	for _, s := range st.Sessions {
		for _, f := range s.Files {
			_, err := r.ReadMemfd(f.Compatible, f.Data)
			errs = append(errs, err)
		}
	}
	return errs
}

// TestRestorerLinear: many files naming one memfd with a large folio array
// cost the array once; each further file costs a constant, as its first
// vmalloc page is already restored (EINVAL).
func TestRestorerLinear(t *testing.T) {
	t.Parallel()        // memory of its own
	const folios = 8192 // 32 pages of folio array
	work := func(nfiles int) int {
		m, root, st := sharedMemfdImage(t, nfiles, folios)
		r := NewRestorer(m)
		errs := retrieveAll(r, root, st)
		if errs[0] != nil {
			t.Fatalf("first file: %v", errs[0])
		}
		for i, err := range errs[1:] {
			if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "already restored") {
				t.Fatalf("file %d naming the same memfd_luo_ser: %v, want EINVAL, already restored", i+1, err)
			}
		}
		return r.work
	}
	w1, w2, w4 := work(1000), work(2000), work(4000)
	t.Logf("work: 1000 files %d, 2000 files %d, 4000 files %d", w1, w2, w4)
	// Linear: each 1000 more files cost the same, a few units per file,
	// and the folio array is decoded once.
	if d1, d2 := w2-w1, w4-w2; d2 != 2*d1 || d1 > 8*1000 {
		t.Errorf("work not linear in the files: +1000 files cost %d, +2000 cost %d", d1, d2)
	}
	if w1 > 2*folios+8*1000+2*PageSize {
		t.Errorf("1000 files cost %d, more than the folio array once", w1)
	}

	// The counter sees the quadratic path: a fresh Restorer per file
	// (what ReadMemfd does) decodes the whole array every time.
	m, root, st := sharedMemfdImage(t, 50, folios)
	total := 0
	for _, f := range st.Sessions[0].Files {
		r := NewRestorer(m)
		r.RestoreLUO(root)
		if _, err := r.ReadMemfd(f.Compatible, f.Data); err != nil {
			t.Fatal(err)
		}
		total += r.work
	}
	if total < 50*folios {
		t.Errorf("50 files with a Restorer each cost %d, want at least %d", total, 50*folios)
	}
}

// TestRestorerSharedPages: a page is restored once, across files: a folio
// of another memfd, of LUO's luo_ser or session block, or of a memfd
// discarded at finish, fails the second claim with EIO.
func TestRestorerSharedPages(t *testing.T) {
	setup := func(t *testing.T) (m *Memory, root, a, b uint64) {
		m = NewMemory()
		var err error
		if a, err = WriteMemfd(m, MemfdV1, 0, 2*PageSize, 0, sparse(nil)); err != nil {
			t.Fatal(err)
		}
		if b, err = WriteMemfd(m, MemfdV1, 0, 2*PageSize, 0, sparse(nil)); err != nil {
			t.Fatal(err)
		}
		st := &State{Sessions: []SessionState{{Name: "s", Files: []FileSer{{Compatible: MemfdV1, Data: a, Token: 1}, {Compatible: MemfdV1, Data: b, Token: 2}}}}}
		if root, err = WriteLUO(m, st); err != nil {
			t.Fatal(err)
		}
		return m, root, a, b
	}
	// folioOf returns the PA of folio i's entry of the memfd at ser.
	entry := func(m *Memory, ser uint64, i int) uint64 {
		var vm kvmalloc
		vm.decode(m.span(ser+24, KHOVmallocSize))
		return ne.Uint64(m.span(vm.first+8, 8)) + uint64(i)*FolioSerSize
	}
	point := func(m *Memory, ser uint64, i int, pa uint64) {
		f := FolioSer{PFN: pa >> pageShift, Flags: FolioDirty | FolioUptodate, Index: uint64(i)}
		f.put(m.span(entry(m, ser, i), FolioSerSize))
	}
	sessionBlock := func(m *Memory, root uint64) uint64 {
		var ls LUOSer
		_ = ls.Decode(m.span(root, LUOSerSize))
		return ls.SessionsPA
	}
	cases := []struct {
		name   string
		target func(m *Memory, root, a uint64) uint64
	}{
		{"folio of another memfd", func(m *Memory, root, a uint64) uint64 {
			var f FolioSer
			_ = f.Decode(m.span(entry(m, a, 1), FolioSerSize))
			return f.PFN << pageShift
		}},
		{"the other memfd's memfd_luo_ser", func(m *Memory, root, a uint64) uint64 { return a }},
		{"luo_ser", func(m *Memory, root, a uint64) uint64 { return root }},
		{"session block", func(m *Memory, root, a uint64) uint64 { return sessionBlock(m, root) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, root, a, b := setup(t)
			point(m, b, 1, c.target(m, root, a))
			// Each file alone decodes fine: only a boot-wide record of
			// the restored pages sees the sharing.
			if _, err := ReadMemfd(m, MemfdV1, b); err != nil {
				t.Fatalf("one file alone: %v", err)
			}
			r := NewRestorer(m)
			errs := retrieveAll(r, root, &State{Sessions: []SessionState{{Files: []FileSer{{Compatible: MemfdV1, Data: a}, {Compatible: MemfdV1, Data: b}}}}})
			if errs[0] != nil {
				t.Fatalf("first file: %v", errs[0])
			}
			if !errors.Is(errs[1], syscall.EIO) || !strings.Contains(errs[1].Error(), "folio 1 page") || !strings.Contains(errs[1].Error(), "already restored") {
				t.Errorf("second file: %v, want EIO, folio 1 already restored", errs[1])
			}
		})
	}
	t.Run("discarded at finish", func(t *testing.T) {
		m, root, a, b := setup(t)
		var f FolioSer
		_ = f.Decode(m.span(entry(m, a, 0), FolioSerSize))
		point(m, b, 1, f.PFN<<pageShift)
		r := NewRestorer(m)
		r.RestoreLUO(root)
		r.DiscardMemfd(MemfdV1, a)
		if !r.Restored(a) || !r.Restored(f.PFN<<pageShift) {
			t.Fatal("DiscardMemfd left the memfd_luo_ser or a folio unrestored")
		}
		if _, err := r.ReadMemfd(MemfdV1, b); !errors.Is(err, syscall.EIO) {
			t.Errorf("retrieve after the shared memfd was discarded: %v, want EIO", err)
		}
	})
	t.Run("folio failure restores the rest", func(t *testing.T) {
		m, root, a, b := setup(t)
		point(m, b, 0, a)
		r := NewRestorer(m)
		r.RestoreLUO(root)
		r.claim(a)
		if _, err := r.ReadMemfd(MemfdV1, b); !errors.Is(err, syscall.EIO) {
			t.Fatalf("folio 0 on a restored page: %v, want EIO", err)
		}
		var f FolioSer
		_ = f.Decode(m.span(entry(m, b, 1), FolioSerSize))
		if !r.Restored(f.PFN<<pageShift) || !r.Restored(b) {
			t.Error("put_folios: folio 1 or the memfd_luo_ser not restored after folio 0 failed")
		}
	})
}

// TestRestoreLUOFileBlocks: RestoreLUO restores luo_ser and the session
// blocks, not the file blocks, and names each session's first file block
// for RestoreBlocks, which restores the chain at finish.
func TestRestoreLUOFileBlocks(t *testing.T) {
	m := NewMemory()
	files := make([]FileSer, FilesPerBlock+1) // two file blocks
	for i := range files {
		files[i] = FileSer{Compatible: "x-v1", Token: uint64(i)}
	}
	root, err := WriteLUO(m, &State{Sessions: []SessionState{{Name: "a", Files: files}, {Name: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	var ls LUOSer
	_ = ls.Decode(m.span(root, LUOSerSize))
	var ss SessionSer
	_ = ss.Decode(m.span(ls.SessionsPA+BlockHeaderSize, SessionSerSize))
	second := ne.Uint64(m.span(ss.FilesPA, 8))
	r := NewRestorer(m)
	heads := r.RestoreLUO(root)
	if len(heads) != 2 || heads[0] != ss.FilesPA || heads[1] != 0 {
		t.Fatalf("RestoreLUO = %#x, want [%#x 0]", heads, ss.FilesPA)
	}
	if !r.Restored(root) || !r.Restored(ls.SessionsPA) || r.Restored(ss.FilesPA) || r.Restored(ls.FLBsPA) {
		t.Fatal("RestoreLUO restored the wrong pages")
	}
	r.RestoreBlocks(heads[0])
	if !r.Restored(ss.FilesPA) || !r.Restored(second) {
		t.Fatal("RestoreBlocks left a file block")
	}
}
