//go:build linux

package fake_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// Frozen follows the kernel's SHMEM_F_MAPPING_FROZEN: set on the memfd's
// inode by a preserve, for every fd of it, cleared by the close of its
// session, never set on a memfd that was not preserved or on one
// retrieved after the live update.
func TestFrozen(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	m := faketest.Memfd(t, "abcd")
	defer m.Close()
	other := faketest.Memfd(t, "efgh")
	defer other.Close()
	frozen := func(fd int) bool {
		t.Helper()
		ok, err := k.Frozen(fd)
		if err != nil {
			t.Fatalf("Frozen(%d): %v", fd, err)
		}
		return ok
	}
	if k.AnyFrozen() || frozen(int(m.Fd())) {
		t.Fatal("a memfd is frozen before any preserve")
	}
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	dup, err := unix.Dup(int(m.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	opath, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", m.Fd()), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(opath)
	if !k.AnyFrozen() {
		t.Fatal("AnyFrozen after a preserve = false")
	}
	for _, fd := range []int{int(m.Fd()), dup, opath} {
		if !frozen(fd) {
			t.Errorf("Frozen(fd %d of the preserved memfd) = false", fd)
		}
	}
	if frozen(int(other.Fd())) {
		t.Error("a memfd never preserved is frozen")
	}
	if _, err := k.Frozen(-1); !errors.Is(err, unix.EBADF) {
		t.Errorf("Frozen(-1) = %v, want EBADF", err)
	}

	// Closing the session unpreserves: Frozen sees the close at once.
	s.Close()
	if frozen(int(m.Fd())) {
		t.Error("Frozen after the session's close = true")
	}
	if k.AnyFrozen() {
		t.Error("AnyFrozen after Frozen reaped the close = true")
	}

	// Preserved again, handed over: the retrieved memfd is not frozen.
	s, err = d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	if !frozen(int(m.Fd())) {
		t.Fatal("Frozen after the second preserve = false")
	}
	faketest.Kexec(t, k, s, d)
	if k.AnyFrozen() || frozen(int(m.Fd())) {
		t.Error("the old boot's memfd is frozen after the Kexec")
	}
	d = faketest.Open(t, k)
	in, err := d.RetrieveSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := in.Retrieve(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if frozen(int(r.Fd())) {
		t.Error("a retrieved memfd is frozen")
	}

	k.Close()
	if _, err := k.Frozen(int(m.Fd())); !errors.Is(err, fake.ErrKernelClosed) {
		t.Errorf("Frozen after Close = %v, want ErrKernelClosed", err)
	}
}

// A memfd preserve that fails in the handler (memfd-v2's EFBIG for more
// than UINT_MAX pages) leaves the inode thawed, as memfd_luo_preserve's
// error path does.
func TestFrozenFailedPreserve(t *testing.T) {
	k := faketest.New(t, fake.WithGeneration(fake.Linux7_2))
	d := faketest.Open(t, k)
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, "")
	defer m.Close()
	if err := unix.Ftruncate(int(m.Fd()), (1<<32)*4096); err != nil {
		t.Skipf("a sparse memfd of 2^32 pages: %v", err)
	}
	if err := s.Preserve(m, 1); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("preserve of 2^32 pages: %v, want EFBIG", err)
	}
	if ok, err := k.Frozen(int(m.Fd())); err != nil || ok {
		t.Errorf("Frozen after the failed preserve = %v, %v; want false", ok, err)
	}
}

// Under Linux 6.19 two open files of one memfd can be preserved, in two
// sessions; the flag is the inode's, so the first unpreserve thaws it
// while the other session still holds the memfd.
func TestFrozenTwoOpenFiles(t *testing.T) {
	k := faketest.New(t, fake.WithGeneration(fake.Linux6_19))
	d := faketest.Open(t, k)
	m := faketest.Memfd(t, "abcd")
	defer m.Close()
	again, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", m.Fd()), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(again)
	a, err := d.CreateSession("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateSession("b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.PreserveFD(again, 1); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Frozen(again); err != nil || !ok {
		t.Fatalf("Frozen with both preserved = %v, %v", ok, err)
	}
	a.Close()
	if ok, err := k.Frozen(again); err != nil || ok {
		t.Errorf("Frozen after one unpreserve = %v, %v; want false (the inode's flag is cleared)", ok, err)
	}
}
