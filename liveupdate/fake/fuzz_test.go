//go:build linux

package fake_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/liveupdate"

	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// fuzzBaseImage lays out, with package kho, what a live update of gen
// hands over: two sessions, the first with two memfds (one with a hole),
// the second with one, all of gen's memfd layout. It returns the image
// file's bytes.
func fuzzBaseImage(f *testing.F, compat string) []byte {
	m := kho.NewMemory()
	var sers []uint64
	for _, data := range []string{"first", "\x00" + string(make([]byte, kho.PageSize)) + "second", "third"} {
		pa, err := kho.WriteMemfd(m, compat, 2, uint64(len(data)), 0, bytes.NewReader([]byte(data)))
		if err != nil {
			f.Fatal(err)
		}
		sers = append(sers, pa)
	}
	root, err := kho.WriteLUO(m, &kho.State{LiveupdateNum: 3, Sessions: []kho.SessionState{
		{Name: "a", Files: []kho.FileSer{{Compatible: compat, Data: sers[0], Token: 1}, {Compatible: compat, Data: sers[1], Token: 2}}},
		{Name: "b", Files: []kho.FileSer{{Compatible: compat, Data: sers[2], Token: 1}}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := (&kho.Image{Mem: m, Root: root}).WriteTo(&b); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

// fuzzPatch is one record of FuzzBootImage's input: page (an index into
// the image's pages, modulo their number), offset u16 little-endian
// (modulo the page size), length u8, then that many bytes (cut at the
// page's end).
func fuzzPatch(page byte, off uint16, b ...byte) []byte {
	return append([]byte{page, byte(off), byte(off >> 8), byte(len(b))}, b...)
}

// applyPatches writes the records of data into img's pages.
func applyPatches(img *kho.Image, data []byte) {
	addrs := img.Mem.PageAddrs()
	for len(data) >= 4 && len(addrs) > 0 {
		pa := addrs[int(data[0])%len(addrs)]
		off := (uint64(data[1]) | uint64(data[2])<<8) % kho.PageSize
		n := min(int(data[3]), len(data)-4, int(kho.PageSize-off))
		_ = img.Mem.WriteAt(data[4:4+n], pa+off)
		data = data[4+min(int(data[3]), len(data)-4):]
	}
}

// FuzzBootImage boots the fake from a mutated image file, as a second
// stage does, and retrieves everything: each session the image names,
// each file twice, then finishes and closes them. Whatever the image
// holds, nothing panics or hangs, every failure is an errno, and the
// kernel's bookkeeping holds (CheckInvariants) after.
func FuzzBootImage(f *testing.F) {
	bases := [2][]byte{fuzzBaseImage(f, kho.MemfdV2), fuzzBaseImage(f, kho.MemfdV1)}
	gens := [2]fake.Generation{fake.Linux7_2, fake.Linux6_19}
	img, err := kho.ReadImage(bytes.NewReader(bases[0]))
	if err != nil {
		f.Fatal(err)
	}
	idx := func(pa uint64) byte {
		for i, a := range img.Mem.PageAddrs() {
			if a == pa&^(kho.PageSize-1) {
				return byte(i)
			}
		}
		f.Fatalf("no page %#x", pa)
		return 0
	}
	st, err := kho.ReadLUO(img.Mem, img.Root)
	if err != nil {
		f.Fatal(err)
	}
	a0, b0 := st.Sessions[0].Files[0].Data, st.Sessions[1].Files[0].Data
	f.Add(byte(0), []byte{})
	f.Add(byte(1), []byte{})
	f.Add(byte(0), fuzzPatch(idx(b0), 32, u64le(a0)...))                                         // b shares a's folio array (chunk)
	f.Add(byte(0), fuzzPatch(idx(a0), 8, u64le(1<<62)...))                                       // a huge size
	f.Add(byte(0), fuzzPatch(idx(a0), 0, u64le(1<<63)...))                                       // a position past MAX_LFS_FILESIZE
	f.Add(byte(0), fuzzPatch(idx(a0), 16, 0x40))                                                 // an unknown seal
	f.Add(byte(0), fuzzPatch(idx(img.Root), 0, []byte("luo-v4")...))                             // another ABI: boot panics
	f.Add(byte(1), fuzzPatch(idx(a0), 16, u64le(3)...))                                          // memfd-v1 nr_folios
	f.Add(byte(0), append(fuzzPatch(idx(b0), 24, u64le(2)...), fuzzPatch(0, 8, u64le(0)...)...)) // two edits
	f.Fuzz(func(t *testing.T, gen byte, patches []byte) {
		img, err := kho.ReadImage(bytes.NewReader(bases[gen%2]))
		if err != nil {
			t.Fatal(err)
		}
		applyPatches(img, patches)
		path := filepath.Join(t.TempDir(), "image")
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := img.WriteTo(out); err != nil {
			t.Fatal(err)
		}
		out.Close()

		k, err := fake.New(fake.WithImageFile(path), fake.WithGeneration(gens[gen%2]))
		if err != nil {
			var pe *fake.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("New: %v, want a *PanicError", err)
			}
			return
		}
		defer k.Close()
		d, err := k.Open()
		if err != nil {
			mustErrno(t, err, unix.EIO, "open after a bad restore")
			return
		}
		defer d.Close()
		st, err := kho.ReadLUO(img.Mem, img.Root)
		if st == nil {
			t.Fatalf("the fake restored a state kho.ReadLUO refuses: %v", err)
		}
		for _, ss := range st.Sessions {
			s, err := d.RetrieveSession(ss.Name)
			if liveupdate.ValidateName(ss.Name) != nil {
				// A name the kernel restores but the binding cannot
				// send (empty, 64 bytes, a NUL): refused before the
				// kernel, with no errno.
				if err == nil {
					s.Close()
					t.Fatalf("retrieve session %q, a name the binding cannot send, succeeded", ss.Name)
				}
				if !errors.Is(err, liveupdate.ErrInvalidName) {
					t.Fatalf("retrieve session %q: %v, want ErrInvalidName", ss.Name, err)
				}
				continue
			}
			if err != nil {
				var errno unix.Errno
				if !errors.As(err, &errno) {
					t.Fatalf("retrieve session %q: %v is not an errno", ss.Name, err)
				}
				continue
			}
			for _, fs := range ss.Files {
				for range 2 {
					file, err := s.Retrieve(fs.Token)
					if err != nil {
						var errno unix.Errno
						if !errors.As(err, &errno) {
							t.Fatalf("retrieve %q %#x: %v is not an errno", ss.Name, fs.Token, err)
						}
						continue
					}
					file.Close()
				}
			}
			if err := s.Finish(); err != nil {
				var errno unix.Errno
				if !errors.As(err, &errno) {
					t.Fatalf("finish %q: %v is not an errno", ss.Name, err)
				}
			}
			s.Close()
		}
		if err := k.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

func u64le(v uint64) []byte {
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b[:]
}
