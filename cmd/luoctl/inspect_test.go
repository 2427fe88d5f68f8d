package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-luo/luo/kho"
)

// khoImage writes, with package kho alone, an image holding a memfd-v2
// with seals, a file of another handler, an oddly named session and an FLB.
func khoImage(t *testing.T) string {
	t.Helper()
	m := kho.NewMemory()
	data := bytes.Repeat([]byte("x"), 3*kho.PageSize)
	pa, err := kho.WriteMemfd(m, kho.MemfdV2, 12, uint64(len(data)), 0x5, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	st := &kho.State{
		LiveupdateNum: 41,
		Sessions: []kho.SessionState{
			{Name: "vm 1", Files: []kho.FileSer{
				{Compatible: kho.MemfdV2, Data: pa, Token: 0xdeadbeef},
				{Compatible: "kvm-vm-v1", Data: 0x1234, Token: 7},
			}},
		},
		FLBs: []kho.FLBSer{{Name: "iommu-v1", Data: 0xabc, Count: 2}},
	}
	root, err := kho.WriteLUO(m, st)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kho.img")
	var b bytes.Buffer
	if _, err := (&kho.Image{Mem: m, Root: root}).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectHandlersAndFLBs(t *testing.T) {
	path := khoImage(t)
	out, errs, code := runLuoctl("inspect", path)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	diff(t, out, `liveupdate number: 41
sessions: 1, files: 2

SESSION  TOKEN       HANDLER    SIZE   POSITION  PAGES
"vm 1"   0xdeadbeef  memfd-v2   12288  12        3
"vm 1"   0x7         kvm-vm-v1  -      -         -

FLB       DATA   COUNT
iommu-v1  0xabc  2
`)
	out, _, code = runLuoctl("inspect", "-json", path)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		`"liveupdate_num": 41`,
		`"name": "vm 1"`,
		`"token": "0xdeadbeef"`,
		`"seals": 5`,
		`"handler": "kvm-vm-v1",
          "data": "0x1234"
        }`,
		`"flbs": [
    {
      "name": "iommu-v1",
      "data": "0xabc",
      "count": 2
    }
  ]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
}

func TestInspectNotAnImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, []byte("these are not the pages you are looking for\n"), 0o644)
	_, errs, code := runLuoctl("inspect", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	diff(t, errs, "luoctl: "+path+": not a valid image: kho: malformed image: bad magic \"these ar\" (the file is 44 bytes)\n")

	_, errs, code = runLuoctl("inspect", filepath.Join(t.TempDir(), "missing.img"))
	if code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
}

func TestInspectDashDash(t *testing.T) {
	path := khoImage(t)
	dir := filepath.Dir(path)
	dash := filepath.Join(dir, "-json")
	if err := os.Rename(path, dash); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	out, errs, code := runLuoctl("inspect", "--", "-json")
	if code != 0 || !strings.HasPrefix(out, "liveupdate number: 41\n") {
		t.Errorf("inspect -- -json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// Many file entries naming one memfd_luo_ser with a large folio array (the
// hostile image of issue 9): the next kernel restores the array once, so
// the second file fails on it, and inspect reports that file, without
// decoding the array again for each entry.
func TestInspectSharedMemfdState(t *testing.T) {
	m := kho.NewMemory()
	pa, err := kho.WriteMemfd(m, kho.MemfdV2, 0, 4096*kho.PageSize, 0, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	files := make([]kho.FileSer, 3000)
	for i := range files {
		files[i] = kho.FileSer{Compatible: kho.MemfdV2, Data: pa, Token: uint64(i + 1)}
	}
	root, err := kho.WriteLUO(m, &kho.State{Sessions: []kho.SessionState{{Name: "s", Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = InspectImage(&kho.Image{Mem: m, Root: root})
	if err == nil || !strings.Contains(err.Error(), `session "s" token 0x2`) || !strings.Contains(err.Error(), "already restored") {
		t.Fatalf("inspect of 3000 files sharing one memfd state: %v, want the second file's pages already restored", err)
	}
}

// A folio naming a page of LUO's session block: the kernel restored that
// page when the sessions were deserialized, so the folio's restore fails
// (EIO).
func TestInspectFolioInSessionBlock(t *testing.T) {
	m := kho.NewMemory()
	pa, err := kho.WriteMemfd(m, kho.MemfdV1, 0, kho.PageSize, 0, bytes.NewReader([]byte("data")))
	if err != nil {
		t.Fatal(err)
	}
	root, err := kho.WriteLUO(m, &kho.State{Sessions: []kho.SessionState{{Name: "s", Files: []kho.FileSer{{Compatible: kho.MemfdV1, Data: pa, Token: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ls kho.LUOSer
	buf := make([]byte, kho.LUOSerSize)
	m.ReadAt(buf, root)
	ls.Decode(buf)
	// The folio array: the first vmalloc chunk's first page.
	var w [8]byte
	m.ReadAt(w[:], pa+24) // memfd-v1 kho_vmalloc.first
	m.ReadAt(w[:], leUint(w[:])+8)
	f := kho.FolioSer{PFN: ls.SessionsPA / kho.PageSize, Flags: kho.FolioDirty | kho.FolioUptodate, Index: 0}
	m.WriteAt(f.Encode(), leUint(w[:]))
	_, err = InspectImage(&kho.Image{Mem: m, Root: root})
	if err == nil || !strings.Contains(err.Error(), "folio 0 page") || !strings.Contains(err.Error(), "already restored") || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("inspect of a folio in the session block: %v, want folio 0 already restored (EIO)", err)
	}
}

func leUint(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
