//go:build linux

package fake_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

func mustErrno(t *testing.T, err error, want unix.Errno, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, unix.ErrnoName(want))
	}
}

// Contents with holes, a size that is not a multiple of the page, and the
// file position all survive; the retrieved file is a real memfd that can
// be written and mapped.
func TestKexecMemfdContents(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("mem")
	if err != nil {
		t.Fatal(err)
	}
	m := faketest.Memfd(t, "")
	const size = 5*4096 + 123
	want := make([]byte, size)
	copy(want[10:], "first page")
	copy(want[3*4096+7:], "fourth page, after two holes")
	copy(want[size-5:], "tail!")
	if err := m.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{10, 3*4096 + 7, size - 5} {
		end := off + bytes.IndexByte(want[off:], 0)
		if end < off {
			end = size
		}
		if _, err := m.WriteAt(want[off:end], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Seek(4242, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 7); err != nil {
		t.Fatal(err)
	}
	m.Close()
	d.Close()
	faketest.Kexec(t, k, s)
	if st := k.State(); st.LiveupdateNum != 1 {
		t.Errorf("liveupdate number %d after one update, want 1", st.LiveupdateNum)
	}

	d2 := faketest.Open(t, k)
	in, err := d2.RetrieveSession("mem")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(7)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos, _ := f.Seek(0, 1)
	if pos != 4242 {
		t.Errorf("file position %d, want 4242", pos)
	}
	fi, _ := f.Stat()
	if fi.Size() != size {
		t.Errorf("size %d, want %d", fi.Size(), size)
	}
	got := make([]byte, size)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("contents differ after the live update")
	}
	// The kernel's retrieved file has an empty name (memfd_alloc_file("")
	// without the "memfd:" prefix); the closest a process can make is a
	// memfd named "".
	link, _ := os.Readlink("/proc/self/fd/" + itoa(int(f.Fd())))
	if link != "/memfd: (deleted)" {
		t.Errorf("retrieved file is %q, want a memfd with an empty name", link)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, "mapped")
	unix.Munmap(mem)
	f.ReadAt(got[:6], 0)
	if string(got[:6]) != "mapped" {
		t.Errorf("write through a mapping read back as %q", got[:6])
	}
	if err := in.Finish(); err != nil {
		t.Fatal(err)
	}
}

// A handler registered by the test carries its private data through the
// image, and is asked everything the kernel asks a handler. It preserves
// pipes: what is buffered in one comes back in a new pipe.
type pipeHandler struct {
	mu    sync.Mutex // the fake calls handlers from its own goroutines
	calls []string
}

func (h *pipeHandler) called(what string) {
	h.mu.Lock()
	h.calls = append(h.calls, what)
	h.mu.Unlock()
}

func (h *pipeHandler) Compatible() string { return "test-pipe-v1" }
func (h *pipeHandler) CanPreserve(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}
func (h *pipeHandler) Preserve(f *fake.HandlerFile) error {
	h.called("preserve")
	return nil
}
func (h *pipeHandler) Unpreserve(f *fake.HandlerFile) { h.called("unpreserve") }

// Freeze drains the pipe into preserved memory: a length word, then the
// bytes.
func (h *pipeHandler) Freeze(f *fake.HandlerFile) error {
	h.called("freeze")
	buf := make([]byte, 4096)
	n, err := unix.Read(f.FD, buf[8:])
	if err != nil {
		return err
	}
	binary.NativeEndian.PutUint64(buf, uint64(n))
	pa := f.Mem.Alloc(1)
	if err := f.Mem.WriteAt(buf, pa); err != nil {
		return err
	}
	f.Data = pa
	return nil
}
func (h *pipeHandler) Unfreeze(f *fake.HandlerFile) { h.called("unfreeze") }
func (h *pipeHandler) Retrieve(f *fake.HandlerFile) (int, error) {
	h.called("retrieve")
	buf := make([]byte, 4096)
	if err := f.Mem.ReadAt(buf, f.Data); err != nil {
		return -1, err
	}
	n := binary.NativeEndian.Uint64(buf)
	if n > 4096-8 {
		return -1, unix.EINVAL
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, err
	}
	unix.Write(p[1], buf[8:8+n])
	unix.Close(p[1])
	return p[0], nil
}
func (h *pipeHandler) CanFinish(f *fake.HandlerFile) bool {
	h.called("can-finish")
	return true
}
func (h *pipeHandler) Finish(f *fake.HandlerFile) { h.called("finish") }

func TestKexecCustomHandler(t *testing.T) {
	checkFDs(t)
	h := &pipeHandler{}
	k := faketest.New(t, fake.WithHandler(h))
	d := faketest.Open(t, k)
	s, _ := d.CreateSession("vmm")
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	unix.Write(p[1], []byte("vcpu state"))
	unix.Close(p[1])
	if err := s.PreserveFD(p[0], 9); err != nil {
		t.Fatal(err)
	}
	if got := k.State().Outgoing[0].Files[0].Compatible; got != "test-pipe-v1" {
		t.Fatalf("handler %q", got)
	}
	d.Close()
	faketest.Kexec(t, k, s)
	in, err := faketest.Open(t, k).RetrieveSession("vmm")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(9)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(got) != "vcpu state" {
		t.Errorf("pipe contents after the update %q, %v; want %q", got, err, "vcpu state")
	}
	if err := in.Finish(); err != nil {
		t.Fatal(err)
	}
	want := "preserve freeze retrieve can-finish finish"
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := join(h.calls); got != want {
		t.Errorf("handler calls %q, want %q", got, want)
	}
}

// A kernel without the handler that wrote a file cannot restore it: every
// open fails with EIO.
func TestKexecUnknownHandlerEIO(t *testing.T) {
	checkFDs(t)
	img := filepath.Join(t.TempDir(), "image")
	k := faketest.New(t, fake.WithImageFile(img), fake.WithHandler(&pipeHandler{}))
	d := faketest.Open(t, k)
	s, _ := d.CreateSession("vmm")
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.Write(p[1], []byte("x"))
	if err := s.PreserveFD(p[0], 1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	faketest.Kexec(t, k, s)

	k2 := faketest.New(t, fake.WithImageFile(img)) // no pipe handler
	for range 2 {
		_, err := k2.Open()
		mustErrno(t, err, unix.EIO, "open without the handler")
		mustErrno(t, err, unix.ENOENT, "the cause")
	}
}

// Faults: the nth preserve, a session's freeze, a retrieve, the restore.
func TestFaults(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	a, _ := d.CreateSession("a")
	b, _ := d.CreateSession("b")
	m1, m2, m3 := faketest.Memfd(t, "1"), faketest.Memfd(t, "2"), faketest.Memfd(t, "3")
	defer m1.Close()
	defer m2.Close()
	defer m3.Close()

	if err := k.FailPreserve(2, unix.ENOMEM); err != nil {
		t.Fatal(err)
	}
	if err := a.Preserve(m1, 1); err != nil {
		t.Fatal(err)
	}
	mustErrno(t, a.Preserve(m2, 2), unix.ENOMEM, "second preserve")
	if err := a.Preserve(m2, 2); err != nil {
		t.Fatalf("the fault fires once: %v", err)
	}
	if err := b.Preserve(m3, 1); err != nil {
		t.Fatal(err)
	}

	if err := k.FailFreeze("b", unix.EAGAIN); err != nil {
		t.Fatal(err)
	}
	mustErrno(t, k.Kexec(), unix.EAGAIN, "kexec with a failing freeze")
	st := k.State()
	if len(st.Outgoing) != 2 || len(st.Outgoing[0].Files) != 2 || len(st.Outgoing[1].Files) != 1 {
		t.Fatalf("sessions changed by a failed kexec: %+v", st.Outgoing)
	}
	if err := a.Finish(); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("old kernel still runs after a failed kexec: finish on outgoing gave %v, want EINVAL", err)
	}

	if err := k.FailRetrieve("a", 2, unix.EIO); err != nil {
		t.Fatal(err)
	}
	d.Close()
	faketest.Kexec(t, k, a, b)
	d2 := faketest.Open(t, k)
	in, err := d2.RetrieveSession("a")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for range 2 {
		_, err := in.Retrieve(2)
		mustErrno(t, err, unix.EIO, "retrieve with a fault (sticky)")
	}
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	d2.Close()

	if err := k.FailRestore(unix.EINVAL); err != nil {
		t.Fatal(err)
	}
	faketest.Kexec(t, k, in)
	for range 2 {
		_, err := k.Open()
		mustErrno(t, err, unix.EIO, "open after a failed restore")
	}
	if err := k.CheckFaults(); err != nil {
		t.Errorf("every fault fired: %v", err)
	}
}

// An image of another ABI version, or with a corrupt session chain, is one
// the kernel panics on at boot; New reports it.
func TestBootPanics(t *testing.T) {
	checkFDs(t)
	path := filepath.Join(t.TempDir(), "image")
	k := faketest.New(t, fake.WithImageFile(path))
	d := faketest.Open(t, k)
	s, _ := d.CreateSession("x")
	d.Close()
	faketest.Kexec(t, k, s)

	corrupt := func(t *testing.T, edit func(img *kho.Image)) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := kho.ReadImage(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		edit(img)
		p := filepath.Join(t.TempDir(), "bad")
		out, _ := os.Create(p)
		img.WriteTo(out)
		out.Close()
		_, err = fake.New(fake.WithImageFile(p))
		var pe *fake.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("boot from a corrupt image: %v, want a PanicError", err)
		}
	}
	t.Run("compatible", func(t *testing.T) {
		corrupt(t, func(img *kho.Image) { img.Mem.WriteAt([]byte("luo-v4\x00"), img.Root) })
	})
	t.Run("session block count", func(t *testing.T) {
		corrupt(t, func(img *kho.Image) {
			var root [32]byte
			img.Mem.ReadAt(root[:], img.Root)
			sessions := binary.NativeEndian.Uint64(root[16:])
			img.Mem.WriteAt(make([]byte, 8), sessions+8) // count 0
		})
	})
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}
