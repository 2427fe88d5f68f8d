package newc

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// The bytes of one known file entry and of the trailer, written out by hand.
func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.File("init", 0o755, 5, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" +
		"00000001" + // ino
		"000081ed" + // mode: S_IFREG | 0755
		"00000000" + "00000000" + // uid, gid
		"00000001" + // nlink
		"00000000" + // mtime
		"00000005" + // filesize
		"00000000" + "00000000" + // devmajor, devminor
		"00000000" + "00000000" + // rdevmajor, rdevminor
		"00000005" + // namesize: "init" and its NUL
		"00000000" + // check
		"init\x00" + "\x00" + // 110+5 padded to 116
		"hello" + "\x00\x00\x00" + // 116+5 padded to 124
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" +
		"TRAILER!!!\x00" + "\x00\x00\x00" // 124+110+11 padded to 248
	if got := buf.String(); got != want {
		t.Errorf("archive:\n got %q\nwant %q", got, want)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("length %d is not a multiple of 4", buf.Len())
	}
}

// Every kind of entry comes back as written, with distinct inodes.
func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	steps := []error{
		w.Dir("dev", 0o755|fs.ModeDir),
		w.CharDev("dev/console", 0o600, 5, 1),
		w.Dir("tmp", 0o777|fs.ModeSticky),
		w.File("empty", 0o644, 0, strings.NewReader("")),
		w.File("bin", 0o755|fs.ModeSetuid, 4, strings.NewReader("abcdEXTRA")), // only size bytes are read
		w.Symlink("sbin", "bin"),
		w.Symlink("abs", "/a/b/c"),
	}
	if err := errors.Join(append(steps, w.Close())...); err != nil {
		t.Fatal(err)
	}
	got, err := readArchive(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{Name: "dev", Ino: 1, Mode: 0o040755, Nlink: 2},
		{Name: "dev/console", Ino: 2, Mode: 0o020600, Nlink: 1, RdevMajor: 5, RdevMinor: 1},
		{Name: "tmp", Ino: 3, Mode: 0o041777, Nlink: 2},
		{Name: "empty", Ino: 4, Mode: 0o100644, Nlink: 1},
		{Name: "bin", Ino: 5, Mode: 0o104755, Nlink: 1, Data: "abcd"},
		{Name: "sbin", Ino: 6, Mode: 0o120777, Nlink: 1, Data: "bin"},
		{Name: "abs", Ino: 7, Mode: 0o120777, Nlink: 1, Data: "/a/b/c"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// Names that cannot be archive entries are refused, and the archive stays
// usable.
func TestBadNames(t *testing.T) {
	for _, name := range []string{
		"", "/init", ".", "..", "../x", "a/../b", "a/./b", "a//b", "a/", "a\x00b",
		Trailer, strings.Repeat("n", MaxNameLen+1),
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for what, err := range map[string]error{
			"Dir":     w.Dir(name, 0o755),
			"File":    w.File(name, 0o644, 0, strings.NewReader("")),
			"Symlink": w.Symlink(name, "x"),
			"CharDev": w.CharDev(name, 0o600, 1, 3),
		} {
			if err == nil || !strings.HasPrefix(err.Error(), "newc: ") {
				t.Errorf("%s(%q): error %v, want a newc error", what, name, err)
			}
		}
		if buf.Len() != 0 {
			t.Errorf("%q: %d bytes written for refused entries", name, buf.Len())
		}
		if err := w.File("ok", 0o644, 0, strings.NewReader("")); err != nil {
			t.Errorf("after refusing %q: %v", name, err)
		}
	}
	// The longest name the kernel takes is accepted.
	if err := NewWriter(io.Discard).Dir(strings.Repeat("n", MaxNameLen), 0o755); err != nil {
		t.Error(err)
	}
}

// Modes of the wrong type, sizes out of range and bad symlink targets are
// refused before anything is written.
func TestBadArguments(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for what, err := range map[string]error{
		"Dir symlink mode":    w.Dir("d", fs.ModeSymlink|0o777),
		"File dir mode":       w.File("f", fs.ModeDir|0o755, 0, strings.NewReader("")),
		"File device mode":    w.File("f", fs.ModeDevice|0o644, 0, strings.NewReader("")),
		"File size -1":        w.File("f", 0o644, -1, strings.NewReader("")),
		"File size too big":   w.File("f", 0o644, MaxSize+1, strings.NewReader("")),
		"CharDev block mode":  w.CharDev("c", fs.ModeDevice|0o600, 8, 0),
		"File unix setuid":    w.File("f", 0o4755, 0, strings.NewReader("")),
		"Dir append bit":      w.Dir("d", fs.ModeAppend|0o755),
		"Symlink empty":       w.Symlink("l", ""),
		"Symlink NUL":         w.Symlink("l", "a\x00"),
		"Symlink long target": w.Symlink("l", strings.Repeat("t", MaxNameLen+1)),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written for refused entries", buf.Len())
	}
}

// A file shorter than its size leaves the archive unfinished, and every
// later call says so.
func TestShortFile(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.File("f", 0o644, 10, strings.NewReader("abc"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("File: %v, want io.ErrUnexpectedEOF", err)
	}
	if err2 := w.Dir("d", 0o755); !errors.Is(err2, io.ErrUnexpectedEOF) {
		t.Errorf("Dir after a short file: %v", err2)
	}
	if err2 := w.Close(); !errors.Is(err2, io.ErrUnexpectedEOF) {
		t.Errorf("Close after a short file: %v", err2)
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

var errInjected = errors.New("injected write error")

func (f *failingWriter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		n := f.n
		f.n = 0
		return n, errInjected
	}
	f.n -= len(b)
	return len(b), nil
}

// An error of the underlying writer is returned and sticks.
func TestWriteError(t *testing.T) {
	w := NewWriter(&failingWriter{n: 200})
	if err := w.Dir("a", 0o755); err != nil { // 112 bytes
		t.Fatal(err)
	}
	if err := w.Dir("b", 0o755); !errors.Is(err, errInjected) {
		t.Fatalf("second Dir: %v, want the injected error", err)
	}
	if err := w.Symlink("c", "x"); !errors.Is(err, errInjected) {
		t.Errorf("Symlink after the error: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errInjected) {
		t.Errorf("Close after the error: %v", err)
	}
}

// Close writes one trailer; calls after it return ErrClosed.
func TestClose(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Dir("d", 0o755); !errors.Is(err, ErrClosed) {
		t.Errorf("Dir after Close: %v", err)
	}
	if buf.Len() != n {
		t.Errorf("%d bytes written after Close", buf.Len()-n)
	}
	if es, err := readArchive(buf.Bytes()); err != nil || len(es) != 0 {
		t.Errorf("empty archive: %v, %v", es, err)
	}
}

// AddFS writes parents before children, each directory's entries sorted,
// and keeps modes, data and symlink targets.
func TestAddFS(t *testing.T) {
	fsys := fstest.MapFS{
		"init":          {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"etc/passwd":    {Data: []byte("root:x:0:0::/:/bin/sh\n"), Mode: 0o644},
		"etc":           {Mode: fs.ModeDir | 0o755},
		"a.txt":         {Data: []byte("x"), Mode: 0o600},
		"a/b":           {Data: []byte("yz"), Mode: 0o640},
		"bin/sh":        {Data: []byte("busybox"), Mode: fs.ModeSymlink | 0o777},
		"tmp":           {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		"lib/modules/x": {Data: nil, Mode: 0o644},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.AddFS(fsys); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := readArchive(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name+" "+strconvOct(e.Mode)+" "+e.Data)
	}
	want := []string{
		"a 40555 ", // fstest.MapFS makes missing parents 0555
		"a/b 100640 yz",
		"a.txt 100600 x",
		"bin 40555 ",
		"bin/sh 120777 busybox",
		"etc 40755 ",
		"etc/passwd 100644 root:x:0:0::/:/bin/sh\n",
		"init 100755 #!/bin/sh\n",
		"lib 40555 ",
		"lib/modules 40555 ",
		"lib/modules/x 100644 ",
		"tmp 41777 ",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries:\n got %q\nwant %q", got, want)
	}
}

func strconvOct(v uint32) string {
	const digits = "01234567"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 8 {
		b = append([]byte{digits[v%8]}, b...)
	}
	return string(b)
}
