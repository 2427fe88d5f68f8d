//go:build linux

package fake_test

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// Same-size changes the kernel refuses on a preserved memfd (EPERM from
// shmem_setattr and shmem_fallocate while SHMEM_F_MAPPING_FROZEN is set)
// fail the Kexec with a FrozenPagesError; changes within the size that the
// kernel allows do not.
func TestKexecFrozenPages(t *testing.T) {
	const size = 4 * 4096
	data := strings.Repeat("p", size)
	cases := []struct {
		name    string
		change  func(fd int) error
		refused bool
		witness bool // caught only by the locked mapping
	}{
		{"punch_hole_whole_page", func(fd int) error {
			return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 4096, 4096)
		}, true, false},
		{"truncate_then_rewrite_same_size", func(fd int) error {
			if err := unix.Ftruncate(fd, 0); err != nil {
				return err
			}
			_, err := unix.Pwrite(fd, []byte(strings.Repeat("q", size)), 0)
			return err
		}, true, true},
		{"truncate_then_grow_back", func(fd int) error {
			if err := unix.Ftruncate(fd, 4096); err != nil {
				return err
			}
			return unix.Ftruncate(fd, size)
		}, true, false},
		{"write_within", func(fd int) error {
			_, err := unix.Pwrite(fd, []byte("allowed"), 5000)
			return err
		}, false, false},
		{"write_through_mapping", func(fd int) error {
			m, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				return err
			}
			copy(m[3*4096:], "allowed too")
			return unix.Munmap(m)
		}, false, false},
		{"ftruncate_same_size", func(fd int) error { return unix.Ftruncate(fd, size) }, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.witness && !canMlock() {
				t.Skip("mlock is not allowed here (RLIMIT_MEMLOCK), or /proc/self/pagemap does not tell (qemu-user): the fake has no witness mapping, and documents that it then cannot see this change")
			}
			checkFDs(t)
			k := faketest.New(t)
			d := faketest.Open(t, k)
			s, err := d.CreateSession("frozen")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			m := faketest.Memfd(t, data)
			defer m.Close()
			if err := s.Preserve(m, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.change(int(m.Fd())); err != nil {
				t.Fatalf("change: %v", err)
			}
			err = k.Kexec()
			if !c.refused {
				if err != nil {
					t.Fatalf("Kexec after a change the kernel allows: %v", err)
				}
				return
			}
			var fp *fake.FrozenPagesError
			if !errors.As(err, &fp) || !errors.Is(err, unix.EPERM) || fp.Token != 1 {
				t.Fatalf("Kexec: %v, want a FrozenPagesError for token 1 matching EPERM", err)
			}
			if st := k.State(); len(st.Outgoing) != 1 || len(st.Outgoing[0].Files) != 1 {
				t.Fatalf("after the failed Kexec: %+v, want the session as it was", st)
			}
			// Unpreserved, the file may change: the next Kexec succeeds.
			s.Close()
			if err := k.Kexec(); err != nil {
				t.Fatalf("Kexec without the session: %v", err)
			}
		})
	}
}

// Beyond the witness's size, a released page is still seen in the block
// count.
func TestKexecFrozenPagesLargeFile(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("large")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, strings.Repeat("x", 8192))
	defer m.Close()
	if err := m.Truncate(128 << 20); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 2); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(m.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096); err != nil {
		t.Fatal(err)
	}
	var fp *fake.FrozenPagesError
	if err := k.Kexec(); !errors.As(err, &fp) || fp.Offset != -1 {
		t.Fatalf("Kexec: %v, want a FrozenPagesError from the block count", err)
	}
}

// canMlock tells whether this process may lock a page, as the fake's
// witness mapping does.
func canMlock() bool {
	m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return false
	}
	defer unix.Munmap(m)
	if unix.Mlock(m) != nil {
		return false
	}
	// The witness also needs a pagemap that tells: not so under
	// qemu-user, whose guest addresses are not the host's.
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return false
	}
	defer pm.Close()
	var e [8]byte
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	if _, err := pm.ReadAt(e[:], int64(addr/uintptr(os.Getpagesize())*8)); err != nil {
		return false
	}
	return binary.NativeEndian.Uint64(e[:])&(1<<63) != 0
}

// The pages the fake's pin faults into a sparse memfd's holes are clean:
// once nothing maps and locks them (no witness, as under qemu-user), the
// kernel may drop them again, which lowers the block count without any
// release by the user. That must not fail the Kexec (it did under
// qemu-s390x in CI). Dropping the page cache needs root, and drops every
// clean page on the machine, which only costs rereads.
func TestKexecSparseAfterCacheDrop(t *testing.T) {
	checkFDs(t)
	if os.Geteuid() != 0 {
		t.Skip("writing /proc/sys/vm/drop_caches needs root")
	}
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("sparse")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, "")
	defer m.Close()
	if err := m.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteAt([]byte("end"), 1<<20-3); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 2); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		t.Skipf("drop the page cache: %v", err)
	}
	if err := k.Kexec(); err != nil {
		t.Fatalf("Kexec after the page cache was dropped: %v", err)
	}
}
