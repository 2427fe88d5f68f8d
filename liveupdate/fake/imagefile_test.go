//go:build linux

package fake_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
)

// An empty image file holds no image yet: New boots fresh, Kexec writes
// the image there, and a second kernel boots from it.
func TestImageFileEmptyBootsFresh(t *testing.T) {
	checkFDs(t)
	f, err := os.CreateTemp(t.TempDir(), "luo-image")
	if err != nil {
		t.Fatal(err)
	}
	path := f.Name()
	f.Close()
	k := faketest.New(t, fake.WithImageFile(path))
	if st := k.State(); st.LiveupdateNum != 0 || len(st.Incoming) != 0 {
		t.Fatalf("kernel booted from an empty file: %+v, want a fresh boot", st)
	}
	d := faketest.Open(t, k)
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	faketest.Kexec(t, k, s)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("image file after the Kexec: %v, %v", fi, err)
	}
	k2 := faketest.New(t, fake.WithImageFile(path))
	if st := k2.State(); st.LiveupdateNum != 1 {
		t.Fatalf("second stage booted with live-update number %d, want 1 (from the image)", st.LiveupdateNum)
	}
	in, err := faketest.Open(t, k2).RetrieveSession("s")
	if err != nil {
		t.Fatalf("the session handed over through the once-empty file: %v", err)
	}
	in.Close()
}

// A file that is not empty but holds no image is an error that says how
// to boot fresh.
func TestImageFileGarbageSaysHowToBootFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := fake.New(fake.WithImageFile(path))
	if err == nil {
		k.Close()
		t.Fatal("New booted from a one-byte file")
	}
	if !strings.Contains(err.Error(), "remove the file") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file and say how to boot fresh", err)
	}
	var pe *fake.PanicError
	if errors.As(err, &pe) {
		t.Errorf("a file that is no image is not the kernel's panic: %v", err)
	}
}
