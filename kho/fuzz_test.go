package kho

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"slices"
	"testing"
)

// discard is an io.WriterAt that drops what it is given.
type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// decodeAll runs every decoder on an image, as an inspect tool would, and
// checks what must hold of a successful decode.
func decodeAll(t *testing.T, m *Memory, root uint64) {
	st, err := ReadLUO(m, root)
	if err != nil {
		if _, ok := err.(*DecodeError); !ok {
			t.Fatalf("ReadLUO error %T is not a *DecodeError: %v", err, err)
		}
		return
	}
	for _, s := range st.Sessions {
		for _, f := range s.Files {
			if f.Compatible != MemfdV1 && f.Compatible != MemfdV2 {
				continue
			}
			ms, err := ReadMemfd(m, f.Compatible, f.Data)
			if err != nil {
				if _, ok := err.(*DecodeError); !ok {
					t.Fatalf("ReadMemfd error %T is not a *DecodeError: %v", err, err)
				}
				continue
			}
			if err := ms.ReadContents(m, discard{}); err != nil {
				t.Fatalf("ReadContents of a validated memfd: %v", err)
			}
		}
	}
	// Through one Restorer, as the next kernel retrieves them all: shared
	// pages only add failures, so a file that decodes there decodes
	// alone, and discarding the rest never fails.
	r := NewRestorer(m)
	r.RestoreLUO(root)
	for _, s := range st.Sessions {
		for i, f := range s.Files {
			if f.Compatible != MemfdV1 && f.Compatible != MemfdV2 {
				continue
			}
			if i%2 == 1 {
				r.DiscardMemfd(f.Compatible, f.Data)
				continue
			}
			if _, err := r.ReadMemfd(f.Compatible, f.Data); err == nil {
				if _, err := ReadMemfd(m, f.Compatible, f.Data); err != nil {
					t.Fatalf("memfd decodes through a shared Restorer but not alone: %v", err)
				}
			} else if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("Restorer.ReadMemfd error %T is not a *DecodeError: %v", err, err)
			}
		}
	}
	// A state the writer accepts must come back unchanged.
	m2 := NewMemory()
	root2, err := WriteLUO(m2, st)
	if err != nil {
		return
	}
	st2, err := ReadLUO(m2, root2)
	if err != nil {
		t.Fatalf("rewritten state does not decode: %v", err)
	}
	if !reflect.DeepEqual(st, st2) {
		t.Fatalf("rewritten state differs:\n%+v\n%+v", st, st2)
	}
}

func FuzzReadImage(f *testing.F) {
	good := imageBytes(f)
	f.Add(good)
	f.Add(good[:len(good)-PageSize])
	// Small images fuzz (and minimize) much faster than page-heavy ones:
	// no pages, and a lone luo_ser page without sessions or FLBs.
	var empty bytes.Buffer
	_, _ = (&Image{Mem: NewMemory()}).WriteTo(&empty)
	f.Add(empty.Bytes())
	lone := &Image{Mem: NewMemory()}
	lone.Root = lone.Mem.Alloc(1)
	ls := LUOSer{Compatible: LUOCompatible, LiveupdateNum: 1}
	_ = lone.Mem.WriteAt(ls.Encode(), lone.Root)
	var loneBytes bytes.Buffer
	_, _ = lone.WriteTo(&loneBytes)
	f.Add(loneBytes.Bytes())
	small := &Image{Mem: NewMemory()}
	small.Root, _ = WriteLUO(small.Mem, smallState())
	var b bytes.Buffer
	_, _ = small.WriteTo(&b)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ReadImage(bytes.NewReader(data))
		if err != nil {
			return
		}
		// The container is canonical: writing it back gives the same bytes.
		var out bytes.Buffer
		if _, err := img.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("WriteTo(ReadImage(b)) != b")
		}
		decodeAll(t, img.Mem, img.Root)
	})
}

// patchMemory returns a copy of m in which the patches in data are
// applied. data is a sequence of records {page u8 (index into m's sorted
// pages), offset u16 little-endian, length u8, bytes}.
func patchMemory(m *Memory, addrs []uint64, data []byte) *Memory {
	c := &Memory{runs: slices.Clone(m.runs), next: m.next, npages: m.npages}
	for i := range c.runs {
		c.runs[i].buf = slices.Clone(c.runs[i].buf)
		c.runs[i].freed = slices.Clone(c.runs[i].freed)
	}
	for len(data) >= 4 {
		pa := addrs[int(data[0])%len(addrs)]
		off := int(binary.LittleEndian.Uint16(data[1:])) % PageSize
		n := int(data[3])
		data = data[4:]
		n = min(n, len(data), PageSize-off)
		copy(c.page(pa)[off:], data[:n])
		data = data[n:]
	}
	return c
}

func patch(page byte, off uint16, b ...byte) []byte {
	r := []byte{page, byte(off), byte(off >> 8), byte(len(b))}
	return append(r, b...)
}

func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

func FuzzReadLUO(f *testing.F) {
	img, _, _ := agentImage(f)
	addrs := img.Mem.PageAddrs()
	idx := func(pa uint64) byte {
		for i, a := range addrs {
			if a == pa&^(PageSize-1) {
				return byte(i)
			}
		}
		f.Fatalf("no page %#x", pa)
		return 0
	}
	var ls LUOSer
	_ = ls.Decode(img.Mem.span(img.Root, LUOSerSize))
	sess := idx(ls.SessionsPA)
	var ss SessionSer
	_ = ss.Decode(img.Mem.span(ls.SessionsPA+16, SessionSerSize))
	files := idx(ss.FilesPA)
	var fs FileSer
	_ = fs.Decode(img.Mem.span(ss.FilesPA+16, FileSerSize))
	ser := idx(fs.Data)

	f.Add([]byte{})
	f.Add(patch(sess, 8, u64(0)...))                    // session count 0
	f.Add(patch(sess, 0, u64(ls.SessionsPA)...))        // session cycle
	f.Add(patch(files, 8, u64(64)...))                  // file count too big
	f.Add(patch(sess, 16+72, u64(7)...))                // file count mismatch
	f.Add(patch(idx(img.Root), 0, []byte("luo-v4")...)) // old compatible
	f.Add(patch(ser, 16, u64(1000)...))                 // nr_folios
	f.Add(patch(ser, 24, u64(fs.Data)...))              // chunk = ser page
	f.Add(append(patch(sess, 16+64, u64(ss.FilesPA+PageSize)...), patch(files, 0, u64(ss.FilesPA)...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := patchMemory(img.Mem, addrs, data)
		decodeAll(t, m, img.Root)
	})
}
