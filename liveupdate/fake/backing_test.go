//go:build linux

package fake_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// bigMemfd returns a memfd of 2 MiB + 100 bytes with a pattern in it,
// sealed against growing, positioned at 4321, and its contents.
func bigMemfd(t *testing.T) (*os.File, []byte) {
	t.Helper()
	fd, err := unix.MemfdCreate("big", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "big")
	t.Cleanup(func() { f.Close() })
	data := make([]byte, 2<<20+100)
	for i := range data {
		data[i] = byte(i*13 + i>>12)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(4321, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_GROW); err != nil {
		t.Fatal(err)
	}
	return f, data
}

// memfds counts this process's open fds of memfds.
func memfds() int {
	n := 0
	for _, link := range fdtest.Table() {
		if strings.HasPrefix(link, "/memfd:") {
			n++
		}
	}
	return n
}

// A large memfd crosses the live update as a copy made at Kexec: later
// writes to the old file do not reach it, and the retrieved file has the
// contents, size, position and seals of the file at Kexec. The copy is
// the one fd the fake holds for it meanwhile, and the retrieved file
// itself afterwards.
func TestKexecLargeMemfd(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("big")
	if err != nil {
		t.Fatal(err)
	}
	f, data := bigMemfd(t)
	if err := s.Preserve(f, 7); err != nil {
		t.Fatal(err)
	}
	if n := memfds(); n != 2 {
		t.Fatalf("%d memfds open after the preserve, want 2 (ours and the fake's reference)", n)
	}
	faketest.Kexec(t, k, d)
	// The old boot's reference to the file went, its copy came.
	if n := memfds(); n != 2 {
		t.Errorf("%d memfds open after Kexec, want 2 (ours and the copy)", n)
	}
	s.Close()
	if _, err := f.WriteAt([]byte("after the kexec"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	d = faketest.Open(t, k)
	in, err := d.RetrieveSession("big")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	g, err := in.Retrieve(7)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := make([]byte, len(data)+1)
	n, _ := g.ReadAt(got, 0)
	if n != len(data) || !bytes.Equal(got[:n], data) {
		t.Fatalf("retrieved %d bytes, want the %d at Kexec (equal: %v)", n, len(data), bytes.Equal(got[:min(n, len(data))], data[:min(n, len(data))]))
	}
	if pos, err := g.Seek(0, 1); err != nil || pos != 4321 {
		t.Errorf("position %d, %v; want 4321", pos, err)
	}
	seals, err := unix.FcntlInt(g.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals != unix.F_SEAL_GROW {
		t.Errorf("seals %#x, %v; want F_SEAL_GROW", seals, err)
	}
	// Retrieved twice, the same open file.
	g2, err := in.Retrieve(7)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if pos, _ := g2.Seek(0, 1); pos != 4321 {
		t.Errorf("second retrieve at %d, want the shared 4321", pos)
	}
	if err := in.Finish(); err != nil {
		t.Fatal(err)
	}
}

// The copy of a large file that no retrieve takes is closed when its
// session is finished, when the next Kexec replaces the boot, and when
// the kernel is closed.
func TestLargeMemfdCopyClosed(t *testing.T) {
	for _, end := range []string{"finish", "kexec", "close"} {
		t.Run(end, func(t *testing.T) {
			checkFDs(t)
			k, err := fake.New()
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			d, err := k.Open()
			if err != nil {
				t.Fatal(err)
			}
			s, err := d.CreateSession("big")
			if err != nil {
				t.Fatal(err)
			}
			f, _ := bigMemfd(t)
			if err := s.Preserve(f, 1); err != nil {
				t.Fatal(err)
			}
			f.Close()
			d.Close()
			if err := k.Kexec(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if n := memfds(); n != 1 {
				t.Fatalf("%d memfds open after Kexec, want 1 (the copy)", n)
			}
			var in *liveupdate.Session
			switch end {
			case "finish":
				d, err = k.Open()
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				in, err = d.RetrieveSession("big")
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				if err := in.Finish(); err != nil {
					t.Fatal(err)
				}

			case "kexec":
				if err := k.Kexec(); err != nil {
					t.Fatal(err)
				}

			case "close":
				k.Close()
			}
			if n := memfds(); n != 0 {
				t.Errorf("%d memfds open after the %s, want 0", n, end)
			}
		})
	}
}

// Files below the size that gets a copy, and files of a Linux 6.19
// fake (memfd-v1), go through the image's memory, holding no fd between
// the Kexec and their retrieve.
func TestSmallMemfdNoCopy(t *testing.T) {
	for _, c := range []struct {
		name string
		size int
		opts []fake.Option
	}{
		{"small", 1<<20 - 1, nil},
		{"memfd-v1", 2 << 20, []fake.Option{fake.WithGeneration(fake.Linux6_19)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFDs(t)
			k := faketest.New(t, c.opts...)
			d := faketest.Open(t, k)
			s, err := d.CreateSession("s")
			if err != nil {
				t.Fatal(err)
			}
			m := faketest.Memfd(t, "m")
			if err := m.Truncate(int64(c.size)); err != nil {
				t.Fatal(err)
			}
			if err := s.Preserve(m, 1); err != nil {
				t.Fatal(err)
			}
			m.Close()
			faketest.Kexec(t, k, d)
			if n := memfds(); n != 0 {
				t.Errorf("%d memfds open after Kexec, want 0 (the old boot's reference gone, no copy)", n)
			}
			s.Close()
			d = faketest.Open(t, k)
			in, err := d.RetrieveSession("s")
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			g, err := in.Retrieve(1)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if st, err := g.Stat(); err != nil || st.Size() != int64(c.size) {
				t.Fatalf("retrieved %v, %v; want %d bytes", st, err, c.size)
			}
		})
	}
}

// A Kexec that fails after a large file was copied closes the copy: the
// sessions stay as they were, with the fake's one reference to the file.
func TestLargeMemfdCopyFailedKexec(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	a, err := d.CreateSession("a") // frozen first
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := d.CreateSession("b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f, _ := bigMemfd(t)
	if err := a.Preserve(f, 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := k.FailFreeze("b", unix.EIO); err != nil {
		t.Fatal(err)
	}
	var ke *fake.KexecError
	if err := k.Kexec(); !errors.As(err, &ke) || !errors.Is(err, unix.EIO) {
		t.Fatalf("Kexec = %v, want the injected EIO", err)
	}
	if n := memfds(); n != 1 {
		t.Errorf("%d memfds open after the failed Kexec, want 1 (the fake's reference)", n)
	}
}

// Retrieves, finishes and closes of sessions of large files race each
// other, then the next Kexec: every copy ends up taken or closed, once,
// and the files retrieved have their contents.
func TestLargeMemfdCopiesRace(t *testing.T) {
	checkFDs(t)
	const sessions = 8
	k := faketest.New(t)
	d := faketest.Open(t, k)
	var want []byte
	for i := range sessions {
		s, err := d.CreateSession(fmt.Sprint("s-", i))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for tok := range uint64(2) {
			f, data := bigMemfd(t)
			if err := s.Preserve(f, tok); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want = data
		}
	}
	faketest.Kexec(t, k, d)
	d = faketest.Open(t, k)
	var wg sync.WaitGroup
	errs := make(chan error, 4*sessions)
	for i := range sessions {
		in, err := d.RetrieveSession(fmt.Sprint("s-", i))
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		// Two goroutines retrieve each file of the session while a
		// third finishes it: each retrieve gets the file or ENOENT.
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for tok := range uint64(2) {
					f, err := in.Retrieve(tok)
					if errors.Is(err, unix.ENOENT) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					got := make([]byte, len(want))
					if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("session %d token %d: contents differ (%v)", i, tok, err)
					}
					f.Close()
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if err := in.Finish(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The sessions not finished keep their copies until the next Kexec.
	faketest.Kexec(t, k, d)
	if n := memfds(); n != 0 {
		t.Errorf("%d memfds open after the next Kexec, want 0", n)
	}
}
