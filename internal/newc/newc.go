// Package newc writes cpio archives in the "newc" format (SVR4 without
// checksums, magic 070701), the format of Linux initramfs images.
//
// Every header is 110 ASCII bytes: the magic and thirteen 8-digit
// hexadecimal fields (inode, mode, uid, gid, nlink, mtime, file size,
// device major and minor, rdev major and minor, name size including its
// NUL, checksum). The name and its NUL follow, padded with NULs to a
// multiple of 4 bytes counted from the header's start, then the data
// (a symlink's data is its target), padded likewise. An entry named
// "TRAILER!!!" ends the archive.
//
// The archives are reproducible: uid, gid and mtime are 0, inodes are
// numbered 1, 2, 3... in the order of the entries, and files have nlink 1,
// so that no two entries are taken for hard links of each other.
//
// Linux unpacks an initramfs in order and makes no missing parent
// directory (init/initramfs.c, do_name: an entry whose parent does not
// exist is skipped without a word), so a directory must come before what
// it holds; the Writer does not check this, since an archive may add to
// the directories of one unpacked before it.
package newc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Magic is the magic number that starts every newc header.
const Magic = "070701"

// HeaderSize is the length of a newc header, before the name.
const HeaderSize = 110

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// MaxNameLen is the longest name Linux unpacks from an initramfs: the name
// and its NUL must fit in PATH_MAX (4096) bytes; the kernel skips entries
// with longer names. It is also the longest symlink target it takes.
const MaxNameLen = 4095

// MaxSize is the largest file the 8-hex-digit size field can hold.
const MaxSize = 1<<32 - 1

// File type bits of the mode field, as in <sys/stat.h>.
const (
	typeDir     = 0o040000
	typeChar    = 0o020000
	typeRegular = 0o100000
	typeSymlink = 0o120000
)

// ErrClosed is returned by a Writer's methods after Close.
var ErrClosed = errors.New("newc: archive already closed")

// Writer writes a newc archive to an io.Writer, one entry per call. After
// any error from the underlying writer (or a short file) the archive is
// left unfinished and every later call returns that error. A Writer is
// not safe for concurrent use.
type Writer struct {
	w      io.Writer
	ino    uint32 // the last inode number used
	err    error  // sticky
	closed bool
}

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// header is the fields of one entry's header that vary.
type header struct {
	ino, mode, nlink     uint32
	size                 uint32
	rdevMajor, rdevMinor uint32
	name                 string // NUL added when written
}

// fileModeBits returns the permission, setuid, setgid and sticky bits of m
// in the form of a Unix mode.
func fileModeBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// checkMode returns an error unless mode holds only permission, setuid,
// setgid and sticky bits, and a type that is typ or none. Unix-style bits
// such as 0o4000 are refused, not dropped: fs.FileMode spells setuid
// fs.ModeSetuid.
func checkMode(kind, name string, mode, typ fs.FileMode) error {
	if t := mode.Type(); t != 0 && t != typ {
		return fmt.Errorf("newc: %s %q: mode %v is not a %s's", kind, name, mode, kind)
	}
	if extra := mode &^ (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); extra != 0 {
		return fmt.Errorf("newc: %s %q: mode %v has bits %#o that a newc mode cannot hold (setuid is fs.ModeSetuid, not 0o4000)",
			kind, name, mode, uint32(extra))
	}
	return nil
}

// checkName returns an error when name cannot name an archive entry: it
// must be a valid io/fs path (no leading or trailing "/", no empty, "."
// or ".." elements), not "." itself, not the trailer's name, free of NUL
// bytes and at most MaxNameLen bytes long.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("newc: empty name")
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("newc: name %q contains a NUL byte", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("newc: name of %d bytes is longer than %d", len(name), MaxNameLen)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("newc: name %q must not start with \"/\"", name)
	case name == ".":
		return errors.New(`newc: name "." (the root needs no entry)`)
	case name == Trailer:
		return fmt.Errorf("newc: name %q is reserved for the trailer", name)
	case !fs.ValidPath(name):
		return fmt.Errorf("newc: name %q has an empty, \".\" or \"..\" element or a trailing \"/\"", name)
	}
	return nil
}

// begin checks that the writer can take another entry, and numbers it.
func (w *Writer) begin(name string) (uint32, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, ErrClosed
	}
	if err := checkName(name); err != nil {
		return 0, err
	}
	if w.ino == 1<<32-1 {
		return 0, errors.New("newc: more entries than 32-bit inode numbers")
	}
	w.ino++
	return w.ino, nil
}

// writeHeader writes h, the name and the name's padding.
func (w *Writer) writeHeader(h header) error {
	namesize := len(h.name) + 1
	buf := make([]byte, 0, HeaderSize+namesize+3)
	buf = append(buf, Magic...)
	for _, v := range [13]uint32{
		h.ino, h.mode, 0, 0, h.nlink, 0, h.size,
		0, 0, h.rdevMajor, h.rdevMinor, uint32(namesize), 0,
	} {
		buf = fmt.Appendf(buf, "%08x", v)
	}
	buf = append(buf, h.name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad(len(buf)))...)
	return w.write(buf)
}

// pad is how many bytes bring n to a multiple of 4.
func pad(n int) int { return (4 - n%4) % 4 }

// write writes b, making any error sticky.
func (w *Writer) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("newc: %w", err)
		return w.err
	}
	return nil
}

// Dir adds a directory. mode gives its permission bits (and setuid,
// setgid, sticky); fs.ModeDir may be set, no other type bit.
func (w *Writer) Dir(name string, mode fs.FileMode) error {
	if err := checkMode("directory", name, mode, fs.ModeDir); err != nil {
		return err
	}
	ino, err := w.begin(name)
	if err != nil {
		return err
	}
	return w.writeHeader(header{ino: ino, mode: typeDir | fileModeBits(mode), nlink: 2, name: name})
}

// File adds a regular file of size bytes, read from r: exactly size bytes
// are read, and an r that ends sooner is an error that leaves the archive
// unfinished. mode gives the permission bits (and setuid, setgid, sticky)
// and may have no type bit. size is at most MaxSize. Nothing after the
// size bytes is read, so r may be longer.
func (w *Writer) File(name string, mode fs.FileMode, size int64, r io.Reader) error {
	if err := checkMode("regular file", name, mode, 0); err != nil {
		return err
	}
	if size < 0 || size > MaxSize {
		return fmt.Errorf("newc: file %q: size %d is outside 0..%d", name, size, int64(MaxSize))
	}
	ino, err := w.begin(name)
	if err != nil {
		return err
	}
	if err := w.writeHeader(header{ino: ino, mode: typeRegular | fileModeBits(mode), nlink: 1, size: uint32(size), name: name}); err != nil {
		return err
	}
	n, err := io.CopyN(w.w, r, size)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("file %q: read %d of %d bytes: %w", name, n, size, io.ErrUnexpectedEOF)
		}
		w.err = fmt.Errorf("newc: %w", err)
		return w.err
	}
	return w.write(make([]byte, pad(int(size%4))))
}

// Symlink adds a symbolic link to target (mode 0777, as Linux gives every
// symlink). target is stored as written; it must be non-empty, free of
// NUL bytes and at most MaxNameLen bytes long.
func (w *Writer) Symlink(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("newc: symlink %q: empty target", name)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("newc: symlink %q: target contains a NUL byte", name)
	case len(target) > MaxNameLen:
		return fmt.Errorf("newc: symlink %q: target of %d bytes is longer than %d", name, len(target), MaxNameLen)
	}
	ino, err := w.begin(name)
	if err != nil {
		return err
	}
	if err := w.writeHeader(header{ino: ino, mode: typeSymlink | 0o777, nlink: 1, size: uint32(len(target)), name: name}); err != nil {
		return err
	}
	return w.write(append([]byte(target), make([]byte, pad(len(target)))...))
}

// CharDev adds a character device node (such as dev/console, 5 1). mode
// gives the permission bits; fs.ModeDevice|fs.ModeCharDevice may be set,
// no other type bit.
func (w *Writer) CharDev(name string, mode fs.FileMode, major, minor uint32) error {
	if err := checkMode("character device", name, mode, fs.ModeDevice|fs.ModeCharDevice); err != nil {
		return err
	}
	ino, err := w.begin(name)
	if err != nil {
		return err
	}
	return w.writeHeader(header{ino: ino, mode: typeChar | fileModeBits(mode), nlink: 1,
		rdevMajor: major, rdevMinor: minor, name: name})
}

// Close writes the trailer that ends the archive. It does not close the
// underlying writer. Calls after the first return ErrClosed.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	return w.writeHeader(header{nlink: 1, name: Trailer})
}
