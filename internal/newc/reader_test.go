package newc

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
)

// entry is one entry read back from an archive.
type entry struct {
	Name                 string
	Ino, Mode, UID, GID  uint32
	Nlink, Mtime         uint32
	DevMajor, DevMinor   uint32
	RdevMajor, RdevMinor uint32
	Data                 string
}

// readArchive parses a newc archive strictly: magic, hex fields, zero
// checksum, NUL-terminated names, zero padding to 4, a trailer at the end
// and nothing after it. It returns the entries before the trailer.
func readArchive(b []byte) ([]entry, error) {
	var es []entry
	off := 0
	for {
		if len(b)-off < HeaderSize {
			return nil, fmt.Errorf("offset %d: short header", off)
		}
		h := b[off : off+HeaderSize]
		if string(h[:6]) != Magic {
			return nil, fmt.Errorf("offset %d: magic %q", off, h[:6])
		}
		var f [13]uint32
		for i := range f {
			s := string(h[6+8*i : 14+8*i])
			v, err := strconv.ParseUint(s, 16, 32)
			if err != nil || len(s) != 8 {
				return nil, fmt.Errorf("offset %d: field %d %q: %v", off, i, s, err)
			}
			f[i] = uint32(v)
		}
		if f[12] != 0 {
			return nil, fmt.Errorf("offset %d: checksum %d", off, f[12])
		}
		namesize := int(f[11])
		nameEnd := off + HeaderSize + namesize
		if namesize == 0 || nameEnd > len(b) || b[nameEnd-1] != 0 {
			return nil, fmt.Errorf("offset %d: bad name size %d", off, namesize)
		}
		name := string(b[off+HeaderSize : nameEnd-1])
		dataOff := nameEnd + pad(nameEnd)
		dataEnd := dataOff + int(f[6])
		next := dataEnd + pad(dataEnd)
		if next > len(b) {
			return nil, fmt.Errorf("%s: truncated", name)
		}
		if !isZero(b[nameEnd:dataOff]) || !isZero(b[dataEnd:next]) {
			return nil, fmt.Errorf("%s: padding not zero", name)
		}
		e := entry{name, f[0], f[1], f[2], f[3], f[4], f[5], f[7], f[8], f[9], f[10], string(b[dataOff:dataEnd])}
		off = next
		if name == Trailer {
			if off != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return es, nil
		}
		es = append(es, e)
	}
}

func isZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// The test reader catches what it is there to catch, so the tests above
// can fail.
func TestReadArchiveRejects(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.File("fi", 0o644, 1, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes() // header, "fi\0" and 3 NULs, "x" and 3 NULs, trailer
	if _, err := readArchive(good); err != nil {
		t.Fatal(err)
	}
	for what, mutate := range map[string]func([]byte) []byte{
		"magic":         func(b []byte) []byte { b[5] = '7'; return b },
		"name padding":  func(b []byte) []byte { b[HeaderSize+3] = 'p'; return b },
		"data padding":  func(b []byte) []byte { b[HeaderSize+7] = 'p'; return b },
		"no trailer":    func(b []byte) []byte { return b[:HeaderSize+10] },
		"after trailer": func(b []byte) []byte { return append(b, 0, 0, 0, 0) },
		"hex field":     func(b []byte) []byte { b[6] = 'g'; return b },
	} {
		if _, err := readArchive(mutate(bytes.Clone(good))); err == nil {
			t.Errorf("%s: corrupt archive read without error", what)
		}
	}
}
