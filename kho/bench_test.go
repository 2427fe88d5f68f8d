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
