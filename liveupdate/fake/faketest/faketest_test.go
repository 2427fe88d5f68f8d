//go:build linux

package faketest_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// recorder is a testing.TB that records failures and cleanups instead of
// failing the real test, so the helpers' failures can be shown to happen.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	fatal    bool
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
	panic(r)
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// run calls body as a test on r, then r's cleanups, last first.
func (r *recorder) run(body func()) {
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		body()
	}()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func (r *recorder) failures() string { return strings.Join(r.errors, "\n") }

// A clean test passes, and its kernel and device are closed at the end.
func TestCleanRun(t *testing.T) {
	r := &recorder{TB: t}
	var k *fake.Kernel
	r.run(func() {
		k = faketest.New(r)
		d := faketest.Open(r, k)
		s, err := d.CreateSession("a")
		if err != nil {
			t.Fatal(err)
		}
		if err := k.FailFreeze("a", unix.EIO); err != nil {
			t.Fatal(err)
		}
		if err := k.Kexec(); err == nil {
			t.Fatal("kexec with the freeze fault succeeded")
		}
		faketest.Kexec(r, k, s, d)
		d = faketest.Open(r, k)
		in, err := d.RetrieveSession("a")
		if err != nil {
			t.Fatal(err)
		}
		in.Close()
	})
	if len(r.errors) != 0 {
		t.Errorf("a clean test failed: %s", r.failures())
	}
	if _, err := k.Open(); err == nil {
		t.Error("the kernel is open after the test's cleanups")
	}
}

// A fault armed and never fired fails the test at its end.
func TestUnfiredFaultFails(t *testing.T) {
	r := &recorder{TB: t}
	r.run(func() {
		k := faketest.New(r)
		if err := k.FailPreserve(1, unix.EIO); err != nil {
			t.Fatal(err)
		}
	})
	if got := r.failures(); !strings.Contains(got, "FailPreserve(1, EIO)") || r.fatal {
		t.Errorf("test with an unfired fault: fatal %v, failures %q; want an Error naming the fault", r.fatal, got)
	}
}

// A Kexec that fails, an unmatched fault's, is Fatal.
func TestKexecFailureIsFatal(t *testing.T) {
	r := &recorder{TB: t}
	reached := false
	r.run(func() {
		k := faketest.New(r)
		if err := k.FailFreeze("no-such", unix.EIO); err != nil {
			t.Fatal(err)
		}
		faketest.Kexec(r, k)
		reached = true
	})
	if !r.fatal || reached || !strings.Contains(r.failures(), `FailFreeze("no-such", EIO)`) {
		t.Errorf("kexec with an unmatched fault: fatal %v, went on %v, failures %q", r.fatal, reached, r.failures())
	}
}

// Open's failure is Fatal: a second opener gets EBUSY.
func TestOpenFailureIsFatal(t *testing.T) {
	r := &recorder{TB: t}
	r.run(func() {
		k := faketest.New(r)
		faketest.Open(r, k)
		faketest.Open(r, k)
	})
	if !r.fatal || !strings.Contains(r.failures(), "busy") {
		t.Errorf("second open: fatal %v, failures %q", r.fatal, r.failures())
	}
}

// A bad option is fatal at New.
func TestNewFailureIsFatal(t *testing.T) {
	r := &recorder{TB: t}
	r.run(func() { faketest.New(r, fake.WithGeneration(99)) })
	if !r.fatal || !strings.Contains(r.failures(), "fake.New") {
		t.Errorf("New with a bad generation: fatal %v, failures %q", r.fatal, r.failures())
	}
}

// A test that closes the kernel itself passes, also with a preserved
// file still open in its hands.
func TestClosedByTheTest(t *testing.T) {
	r := &recorder{TB: t}
	var s io.Closer
	r.run(func() {
		k := faketest.New(r)
		sess, err := faketest.Open(r, k).CreateSession("open-at-close")
		if err != nil {
			t.Fatal(err)
		}
		s = sess
		m := faketest.Memfd(r, "x")
		if err := sess.Preserve(m, 1); err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
	s.Close()
	if len(r.errors) != 0 {
		t.Errorf("kernel closed by the test: %s", r.failures())
	}
}

// State finds sessions and files by name and token.
func TestStateLookups(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(faketest.Memfd(t, "m"), 7); err != nil {
		t.Fatal(err)
	}
	st := k.State()
	a, ok := st.OutgoingSession("a")
	if !ok || a.Name != "a" {
		t.Fatalf("OutgoingSession(a) = %+v, %v", a, ok)
	}
	if f, ok := a.File(7); !ok || f.Token != 7 || f.Compatible == "" {
		t.Errorf("File(7) = %+v, %v", f, ok)
	}
	if _, ok := a.File(8); ok {
		t.Error("File(8) found")
	}
	if _, ok := st.OutgoingSession("b"); ok {
		t.Error("OutgoingSession(b) found")
	}
	if _, ok := st.IncomingSession("a"); ok {
		t.Error("IncomingSession(a) before the kexec")
	}
	faketest.Kexec(t, k, s, d)
	faketest.Open(t, k)
	if in, ok := k.State().IncomingSession("a"); !ok || len(in.Files) != 1 {
		t.Errorf("IncomingSession(a) after the kexec = %+v, %v", in, ok)
	}
}

// Memfd holds its content, and is closed when the test ends.
func TestMemfd(t *testing.T) {
	r := &recorder{TB: t}
	var f *os.File
	r.run(func() {
		f = faketest.Memfd(r, "content")
		b := make([]byte, 16)
		n, err := f.ReadAt(b, 0)
		if string(b[:n]) != "content" || err != io.EOF {
			t.Errorf("memfd holds %q (%v), want %q", b[:n], err, "content")
		}
		if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Errorf("memfd fd flags %#x, %v: want close-on-exec", fl, err)
		}
	})
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Close after the test's cleanups: %v, want ErrClosed", err)
	}
}

// Listen serves the device on a socket of the test's that
// liveupdate.Open opens, until the test ends; on a closed kernel it is
// fatal.
func TestListen(t *testing.T) {
	r := &recorder{TB: t}
	var path string
	r.run(func() {
		k := faketest.New(r)
		path = faketest.Listen(r, k)
		d, err := liveupdate.Open(path)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		d.Close()
	})
	if len(r.errors) != 0 {
		t.Errorf("Listen: %s", r.failures())
	}
	if d, err := liveupdate.Open(path); err == nil {
		d.Close()
		t.Errorf("open %s after the test ended succeeded", path)
	}
	r = &recorder{TB: t}
	r.run(func() {
		k := faketest.New(r)
		k.Close()
		faketest.Listen(r, k)
	})
	if !r.fatal || !strings.Contains(r.failures(), "listen") {
		t.Errorf("Listen on a closed kernel: fatal %v, failures %q", r.fatal, r.failures())
	}
}
