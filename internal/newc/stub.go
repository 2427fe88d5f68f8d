// Package newc is a TEMPORARY stand-in until the real writer lands.
package newc

import (
	"fmt"
	"io"
	"io/fs"
)

type Writer struct {
	w   io.Writer
	ino uint32
	err error
}

func NewWriter(w io.Writer) *Writer { return &Writer{w: w, ino: 1} }

func (w *Writer) hdr(name string, mode uint32, size int64, nlink uint32) {
	if w.err != nil {
		return
	}
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", w.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	w.ino++
	b := append([]byte(h), name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	_, w.err = w.w.Write(b)
}

func (w *Writer) pad(n int64) {
	if w.err == nil && n%4 != 0 {
		_, w.err = w.w.Write(make([]byte, 4-n%4))
	}
}

func (w *Writer) Dir(name string, mode fs.FileMode) error {
	w.hdr(name, 0o040000|uint32(mode.Perm()), 0, 2)
	return w.err
}

func (w *Writer) File(name string, mode fs.FileMode, size int64, r io.Reader) error {
	w.hdr(name, 0o100000|uint32(mode.Perm()), size, 1)
	if w.err == nil {
		_, w.err = io.CopyN(w.w, r, size)
	}
	w.pad(size)
	return w.err
}

func (w *Writer) Close() error {
	w.hdr("TRAILER!!!", 0, 0, 1)
	return w.err
}

func (w *Writer) Symlink(name, target string) error {
	w.hdr(name, 0o120777, int64(len(target)), 1)
	if w.err == nil {
		_, w.err = io.WriteString(w.w, target)
	}
	w.pad(int64(len(target)))
	return w.err
}
