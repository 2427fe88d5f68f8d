package main

import (
	"bytes"
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
