package kho

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkWriteReadLUO writes and reads back a state of n sessions with
// two files each; ns/op should grow linearly with n.
func BenchmarkWriteReadLUO(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		st := bigState(n, func(int) int { return 2 })
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := NewMemory()
				root, err := WriteLUO(m, st)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ReadLUO(m, root); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// byteWriter is an io.WriterAt over a fixed buffer.
type byteWriter []byte

func (w byteWriter) WriteAt(p []byte, off int64) (int, error) {
	return copy(w[off:], p), nil
}

// BenchmarkMemfd256MiB preserves a 256 MiB memfd (WriteMemfd), decodes it
// (ReadMemfd) and copies its contents out (ReadContents); "copy" is a
// plain copy of 256 MiB for scale.
func BenchmarkMemfd256MiB(b *testing.B) {
	const size = 256 << 20
	src := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	dst := make([]byte, size)
	for _, compat := range []string{MemfdV1, MemfdV2} {
		b.Run(compat, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				m := NewMemory()
				pa, err := WriteMemfd(m, compat, 0, size, 0, bytes.NewReader(src))
				if err != nil {
					b.Fatal(err)
				}
				ms, err := ReadMemfd(m, compat, pa)
				if err != nil {
					b.Fatal(err)
				}
				if err := ms.ReadContents(m, byteWriter(dst)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			copy(dst, src)
		}
	})
}

// BenchmarkManyMemfds preserves n one-page memfds in one session
// (WriteMemfd, WriteLUO) and restores them as the next kernel does
// (ReadLUO, then through one Restorer: RestoreLUO, ReadMemfd and
// ReadContents of each file, RestoreBlocks): the memory's and the
// Restorer's cost per page and per allocation. ns/op should grow linearly
// with n.
func BenchmarkManyMemfds(b *testing.B) {
	page := bytes.Repeat([]byte("many"), PageSize/4)
	dst := make(byteWriter, PageSize)
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := NewMemory()
				files := make([]FileSer, n)
				for i := range files {
					pa, err := WriteMemfd(m, MemfdV2, 0, PageSize, 0, bytes.NewReader(page))
					if err != nil {
						b.Fatal(err)
					}
					files[i] = FileSer{Compatible: MemfdV2, Data: pa, Token: uint64(i)}
				}
				root, err := WriteLUO(m, &State{Sessions: []SessionState{{Name: "s", Files: files}}})
				if err != nil {
					b.Fatal(err)
				}
				st, err := ReadLUO(m, root)
				if err != nil {
					b.Fatal(err)
				}
				r := NewRestorer(m)
				heads := r.RestoreLUO(root)
				for _, f := range st.Sessions[0].Files {
					ms, err := r.ReadMemfd(f.Compatible, f.Data)
					if err != nil {
						b.Fatal(err)
					}
					if err := ms.ReadContents(m, dst); err != nil {
						b.Fatal(err)
					}
				}
				r.RestoreBlocks(heads[0])
			}
		})
	}
}

// BenchmarkImage64MiB writes the image of a 64 MiB memfd (WriteTo) and
// reads it back (ReadImage); "copy" is a plain copy of the image's bytes
// for scale.
func BenchmarkImage64MiB(b *testing.B) {
	const size = 64 << 20
	m := NewMemory()
	pa, err := WriteMemfd(m, MemfdV2, 0, size, 0, bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), size/16)))
	if err != nil {
		b.Fatal(err)
	}
	img := &Image{Mem: m, Root: pa}
	var buf bytes.Buffer
	if _, err := img.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	n := buf.Len()
	b.Run("write+read", func(b *testing.B) {
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if _, err := img.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
			if _, err := ReadImage(bytes.NewReader(buf.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
	dst := make([]byte, n)
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			copy(dst, buf.Bytes())
		}
	})
}
