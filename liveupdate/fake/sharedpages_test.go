//go:build linux

package fake_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// twoMemfdImage writes, with package kho, an image of sessions "a" and
// "b" holding one two-page memfd-v2 each (token 1, bytes 'a' and 'b'), lets
// edit change it, and returns the image file's path.
func twoMemfdImage(t *testing.T, edit func(m *kho.Memory, root, a, b uint64)) string {
	t.Helper()
	m := kho.NewMemory()
	var sers [2]uint64
	for i, c := range []byte("ab") {
		pa, err := kho.WriteMemfd(m, kho.MemfdV2, 0, 2*kho.PageSize, 0, bytes.NewReader(bytes.Repeat([]byte{c}, 2*kho.PageSize)))
		if err != nil {
			t.Fatal(err)
		}
		sers[i] = pa
	}
	st := &kho.State{Sessions: []kho.SessionState{
		{Name: "a", Files: []kho.FileSer{{Compatible: kho.MemfdV2, Data: sers[0], Token: 1}}},
		{Name: "b", Files: []kho.FileSer{{Compatible: kho.MemfdV2, Data: sers[1], Token: 1}}},
	}}
	root, err := kho.WriteLUO(m, st)
	if err != nil {
		t.Fatal(err)
	}
	edit(m, root, sers[0], sers[1])
	return writeKHOImage(t, m, root)
}

func writeKHOImage(t *testing.T, m *kho.Memory, root uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := (&kho.Image{Mem: m, Root: root}).WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// folioEntry returns the PA of folio i's entry in the memfd-v2 at ser.
func folioEntry(m *kho.Memory, ser uint64, i int) uint64 {
	var w [8]byte
	m.ReadAt(w[:], ser+32) // kho_vmalloc.first
	m.ReadAt(w[:], binaryGet(w[:])+8)
	return binaryGet(w[:]) + uint64(i)*kho.FolioSerSize
}

func folioPage(m *kho.Memory, ser uint64, i int) uint64 {
	var f kho.FolioSer
	b := make([]byte, kho.FolioSerSize)
	m.ReadAt(b, folioEntry(m, ser, i))
	f.Decode(b)
	return f.PFN * kho.PageSize
}

// pointFolio makes folio i of the memfd at ser name the page at pa.
func pointFolio(m *kho.Memory, ser uint64, i int, pa uint64) {
	f := kho.FolioSer{PFN: pa / kho.PageSize, Flags: kho.FolioDirty | kho.FolioUptodate, Index: uint64(i)}
	m.WriteAt(f.Encode(), folioEntry(m, ser, i))
}

// retrieveOne retrieves token 1 of the incoming session name on d.
func retrieveOne(t *testing.T, d *liveupdate.Device, name string) (*os.File, error) {
	t.Helper()
	s, err := d.RetrieveSession(name)
	if err != nil {
		t.Fatalf("retrieve session %q: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Retrieve(1)
}

// A page is restored once in a boot, across files and sessions: the
// second file to claim a page fails its retrieve as memfd_luo_retrieve
// does, EIO for a folio (kho_restore_folio), EINVAL for a folio array
// (kho_restore_vmalloc), whichever file asks first.
func TestRetrieveSharedPages(t *testing.T) {
	checkFDs(t)
	cases := []struct {
		name   string
		target func(m *kho.Memory, root, a uint64) uint64 // the page b's folio 1 names
	}{
		{"folio of another session's memfd", func(m *kho.Memory, root, a uint64) uint64 { return folioPage(m, a, 1) }},
		{"another memfd's memfd_luo_ser", func(m *kho.Memory, root, a uint64) uint64 { return a }},
	}
	for _, c := range cases {
		for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
			t.Run(c.name+" "+order[0]+" first", func(t *testing.T) {
				path := twoMemfdImage(t, func(m *kho.Memory, root, a, b uint64) {
					pointFolio(m, b, 1, c.target(m, root, a))
				})
				d := faketest.Open(t, faketest.New(t, fake.WithImageFile(path)))
				f, err := retrieveOne(t, d, order[0])
				if err != nil {
					t.Fatalf("first retrieve (%s): %v", order[0], err)
				}
				f.Close()
				f, err = retrieveOne(t, d, order[1])
				if err == nil {
					f.Close()
				}
				want := unix.EIO
				if order[0] == "b" && c.name == "another memfd's memfd_luo_ser" {
					// b's folio took a's memfd_luo_ser page: a still
					// reads it (phys_to_virt), and only its final
					// kho_restore_free warns.
					want = 0
				}
				if want == 0 {
					if err != nil {
						t.Fatalf("second retrieve (%s): %v, want success", order[1], err)
					}
					return
				}
				mustErrno(t, err, want, "second claim of a page ("+order[1]+")")
			})
		}
	}
}

// A folio naming a page of LUO's own state (luo_ser, restored at boot, or
// a session block, restored when the first open deserializes the
// sessions): its restore fails, EIO, instead of a file holding LUO's bytes.
func TestRetrieveFolioInLUOState(t *testing.T) {
	checkFDs(t)
	for _, what := range []string{"luo_ser", "session block"} {
		t.Run(what, func(t *testing.T) {
			path := twoMemfdImage(t, func(m *kho.Memory, root, a, b uint64) {
				target := root
				if what == "session block" {
					buf := make([]byte, kho.LUOSerSize)
					m.ReadAt(buf, root)
					var ls kho.LUOSer
					ls.Decode(buf)
					target = ls.SessionsPA
				}
				pointFolio(m, a, 0, target)
			})
			d := faketest.Open(t, faketest.New(t, fake.WithImageFile(path)))
			_, err := retrieveOne(t, d, "a")
			mustErrno(t, err, unix.EIO, "retrieve of a folio in "+what)
			// The failure is the file's alone: b is intact.
			f, err := retrieveOne(t, d, "b")
			if err != nil {
				t.Fatalf("retrieve b: %v", err)
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if !bytes.Equal(got, bytes.Repeat([]byte("b"), 2*kho.PageSize)) {
				t.Errorf("b's contents changed")
			}
		})
	}
}

// Two file entries naming one memfd_luo_ser: the second retrieve finds the
// folio array restored (EINVAL), in the same session or another; with
// 2000 such entries every retrieve after the first fails at once, and the
// folio array is decoded once.
func TestRetrieveSharedMemfdState(t *testing.T) {
	checkFDs(t)
	m := kho.NewMemory()
	pa, err := kho.WriteMemfd(m, kho.MemfdV2, 0, 1024*kho.PageSize, 0, bytes.NewReader([]byte("shared")))
	if err != nil {
		t.Fatal(err)
	}
	files := make([]kho.FileSer, 2000)
	for i := range files {
		files[i] = kho.FileSer{Compatible: kho.MemfdV2, Data: pa, Token: uint64(i + 1)}
	}
	root, err := kho.WriteLUO(m, &kho.State{Sessions: []kho.SessionState{
		{Name: "s", Files: files},
		{Name: "t", Files: files[:1]},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := faketest.Open(t, faketest.New(t, fake.WithImageFile(writeKHOImage(t, m, root))))
	s, err := d.RetrieveSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range files {
		f, err := s.Retrieve(uint64(i + 1))
		if i == 0 {
			if err != nil {
				t.Fatalf("first file: %v", err)
			}
			f.Close()
			continue
		}
		mustErrno(t, err, unix.EINVAL, "a second file of the same memfd_luo_ser")
	}
	_, err = retrieveOne(t, d, "t")
	mustErrno(t, err, unix.EINVAL, "the same memfd_luo_ser in another session")
}

// Finishing a session whose memfd was never retrieved frees its pages
// (memfd_luo_finish): a memfd of another session sharing a folio with it
// then fails its retrieve (EIO).
func TestRetrieveAfterDiscardSharedFolio(t *testing.T) {
	checkFDs(t)
	path := twoMemfdImage(t, func(m *kho.Memory, root, a, b uint64) {
		pointFolio(m, b, 1, folioPage(m, a, 0))
	})
	d := faketest.Open(t, faketest.New(t, fake.WithImageFile(path)))
	s, err := d.RetrieveSession("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); err != nil {
		t.Fatalf("finish a: %v", err)
	}
	s.Close()
	_, err = retrieveOne(t, d, "b")
	mustErrno(t, err, unix.EIO, "retrieve of a folio discarded with a finished session")
}

func binaryGet(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }

// A decoding error at retrieve gives memfd_luo_retrieve's errno, not EIO
// for all: seals this kernel does not know are EOPNOTSUPP, a folio array
// that does not list its pages EINVAL.
func TestRetrieveDecodeErrno(t *testing.T) {
	checkFDs(t)
	cases := []struct {
		name  string
		edit  func(m *kho.Memory, a uint64)
		errno unix.Errno
	}{
		{"unknown seal", func(m *kho.Memory, a uint64) {
			var w [4]byte
			binary.NativeEndian.PutUint32(w[:], 0x40)
			m.WriteAt(w[:], a+16) // memfd-v2 seals
		}, unix.EOPNOTSUPP},
		{"total_pages too large", func(m *kho.Memory, a uint64) {
			var w [4]byte
			binary.NativeEndian.PutUint32(w[:], 2)
			m.WriteAt(w[:], a+40) // kho_vmalloc.total_pages
		}, unix.EINVAL},
		{"folio outside memory", func(m *kho.Memory, a uint64) {
			pointFolio(m, a, 0, 0x5000)
		}, unix.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := twoMemfdImage(t, func(m *kho.Memory, root, a, b uint64) { c.edit(m, a) })
			d := faketest.Open(t, faketest.New(t, fake.WithImageFile(path)))
			_, err := retrieveOne(t, d, "a")
			mustErrno(t, err, c.errno, c.name)
		})
	}
}

// A folio naming a page of a session's file block: the kernel frees file
// blocks when the session is finished (luo_file_finish), not before, so
// the folio restores while that session is unfinished, and fails (EIO)
// once it is finished.
func TestRetrieveFolioInFileBlock(t *testing.T) {
	checkFDs(t)
	for _, finishFirst := range []bool{false, true} {
		path := twoMemfdImage(t, func(m *kho.Memory, root, a, b uint64) {
			buf := make([]byte, kho.LUOSerSize)
			m.ReadAt(buf, root)
			var ls kho.LUOSer
			ls.Decode(buf)
			// Session a is the first entry of the session block.
			ent := make([]byte, kho.SessionSerSize)
			m.ReadAt(ent, ls.SessionsPA+kho.BlockHeaderSize)
			var ss kho.SessionSer
			ss.Decode(ent)
			pointFolio(m, b, 1, ss.FilesPA)
		})
		d := faketest.Open(t, faketest.New(t, fake.WithImageFile(path)))
		s, err := d.RetrieveSession("a")
		if err != nil {
			t.Fatal(err)
		}
		if finishFirst {
			if err := s.Finish(); err != nil {
				t.Fatal(err)
			}
		}
		f, err := retrieveOne(t, d, "b")
		if !finishFirst {
			if err != nil {
				t.Fatalf("retrieve of a folio in an unfinished session's file block: %v, want success", err)
			}
			f.Close()
		} else {
			mustErrno(t, err, unix.EIO, "retrieve of a folio in a finished session's file block")
		}
		s.Close()
	}
}
