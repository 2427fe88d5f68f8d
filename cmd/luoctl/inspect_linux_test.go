package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// memfd returns a memfd holding size bytes of a pattern, at position pos.
func memfd(t *testing.T, name string, size, pos int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i%251) + 1
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(pos, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeImage has a fake kernel do a live update with sessions "a" (memfds
// of 5000 and 0 bytes under tokens 1 and 0x2a) and "empty", and returns
// the image file it wrote.
func fakeImage(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "luo.img")
	k := faketest.New(t, fake.WithImageFile(path))
	dev := faketest.Open(t, k)
	a, err := dev.CreateSession("a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Preserve(memfd(t, "big", 5000, 100), 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Preserve(memfd(t, "zero", 0, 7), 0x2a); err != nil {
		t.Fatal(err)
	}
	e, err := dev.CreateSession("empty")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectTable(t *testing.T) {
	path := fakeImage(t)
	out, errs, code := runLuoctl("inspect", path)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	diff(t, out, `liveupdate number: 1
sessions: 2, files: 2

SESSION  TOKEN  HANDLER   SIZE  POSITION  PAGES
a        0x1    memfd-v2  5000  100       2
a        0x2a   memfd-v2  0     7         0
empty    -      -         -     -         -
`)
}

// files returns the data handles of the image's files, in order.
func dataHandles(t *testing.T, path string) []uint64 {
	t.Helper()
	img := readImage(t, path)
	st, err := kho.ReadLUO(img.Mem, img.Root)
	if err != nil {
		t.Fatal(err)
	}
	var pas []uint64
	for _, s := range st.Sessions {
		for _, f := range s.Files {
			pas = append(pas, f.Data)
		}
	}
	return pas
}

func TestInspectJSON(t *testing.T) {
	path := fakeImage(t)
	// Flags may follow the image.
	out, errs, code := runLuoctl("inspect", path, "-json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	d := dataHandles(t, path)
	// Seals 1: memfds made without MFD_ALLOW_SEALING carry F_SEAL_SEAL,
	// which memfd-v2 keeps.
	diff(t, out, fmt.Sprintf(`{
  "liveupdate_num": 1,
  "sessions": [
    {
      "name": "a",
      "files": [
        {
          "token": "0x1",
          "handler": "memfd-v2",
          "data": "%#x",
          "memfd": {
            "size": 5000,
            "position": 100,
            "pages": 2,
            "seals": 1
          }
        },
        {
          "token": "0x2a",
          "handler": "memfd-v2",
          "data": "%#x",
          "memfd": {
            "size": 0,
            "position": 7,
            "pages": 0,
            "seals": 1
          }
        }
      ]
    },
    {
      "name": "empty",
      "files": []
    }
  ],
  "flbs": []
}
`, d[0], d[1]))
	out2, _, _ := runLuoctl("inspect", "-json", path)
	if out2 != out {
		t.Error("-json before and after the image differ")
	}
}

func readImage(t *testing.T, path string) *kho.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := kho.ReadImage(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeImage(t *testing.T, path string, img *kho.Image) {
	t.Helper()
	var b bytes.Buffer
	if _, err := img.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// offsetOf is where the byte at pa is in the image file.
func offsetOf(img *kho.Image, pa uint64) int64 {
	for i, p := range img.Mem.PageAddrs() {
		if p == pa&^(kho.PageSize-1) {
			return 32 + int64(i)*(8+kho.PageSize) + 8 + int64(pa-p)
		}
	}
	return -1
}

func TestInspectTruncated(t *testing.T) {
	path := fakeImage(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := (fi.Size() - 32) / (8 + kho.PageSize)
	if err := os.Truncate(path, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runLuoctl("inspect", path)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	diff(t, errs, fmt.Sprintf("luoctl: %s: not a valid image: kho: malformed image: truncated page %d of %d (the file is %d bytes; its header says %d pages, which take %d bytes)\n",
		path, pages-1, pages, fi.Size()-100, pages, fi.Size()))

	if err := os.Truncate(path, 10); err != nil {
		t.Fatal(err)
	}
	_, errs, code = runLuoctl("inspect", "-json", path)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	diff(t, errs, fmt.Sprintf("luoctl: %s: not a valid image: kho: malformed image: truncated header (the file is 10 bytes)\n", path))
}

func TestInspectSessionBlockCount(t *testing.T) {
	path := fakeImage(t)
	img := readImage(t, path)
	var root [kho.LUOSerSize]byte
	if err := img.Mem.ReadAt(root[:], img.Root); err != nil {
		t.Fatal(err)
	}
	var ser kho.LUOSer
	if err := ser.Decode(root[:]); err != nil {
		t.Fatal(err)
	}
	// The block header is {next u64, count u64}; the image holds two
	// sessions in one block.
	var count [8]byte
	if err := img.Mem.ReadAt(count[:], ser.SessionsPA+8); err != nil {
		t.Fatal(err)
	}
	if n := binary.NativeEndian.Uint64(count[:]); n != 2 {
		t.Fatalf("session block count %d, want 2", n)
	}
	binary.NativeEndian.PutUint64(count[:], kho.SessionsPerBlock+1)
	if err := img.Mem.WriteAt(count[:], ser.SessionsPA+8); err != nil {
		t.Fatal(err)
	}
	writeImage(t, path, img)

	out, errs, code := runLuoctl("inspect", path)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	diff(t, errs, fmt.Sprintf("luoctl: %s: corrupt LUO state at PA %#x (file offset %#x): session block count 52 not in 1..51 (invalid argument)\n",
		path, ser.SessionsPA, offsetOf(img, ser.SessionsPA)))

	binary.NativeEndian.PutUint64(count[:], 0)
	img.Mem.WriteAt(count[:], ser.SessionsPA+8)
	writeImage(t, path, img)
	_, errs, _ = runLuoctl("inspect", path)
	if !strings.Contains(errs, fmt.Sprintf("at PA %#x (file offset %#x): session block count 0 not in 1..51", ser.SessionsPA, offsetOf(img, ser.SessionsPA))) {
		t.Errorf("count 0: %s", errs)
	}
}

func TestInspectCorruptMemfd(t *testing.T) {
	path := fakeImage(t)
	img := readImage(t, path)
	pa := dataHandles(t, path)[0]
	// memfd-v2 (the fake's default, Linux 7.2): pos u64 @0, size u64 @8.
	// A size of one byte leaves the second folio past the end of the file.
	var size [8]byte
	binary.NativeEndian.PutUint64(size[:], 1)
	if err := img.Mem.WriteAt(size[:], pa+8); err != nil {
		t.Fatal(err)
	}
	writeImage(t, path, img)
	_, errs, code := runLuoctl("inspect", path)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	prefix := fmt.Sprintf(`luoctl: %s: corrupt memfd-v2 state of session "a" token 0x1 at PA `, path)
	if !strings.HasPrefix(errs, prefix) || !strings.Contains(errs, "(file offset 0x") {
		t.Errorf("stderr %q, want it to start %q", errs, prefix)
	}
}
