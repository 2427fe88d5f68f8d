// Package faketest holds test helpers for package fake, as net/http/httptest
// does for net/http: each takes the test's testing.TB, fails the test on
// error, and leaves the cleaning up to t.Cleanup. They keep package fake,
// which programs embed too (examples/handoff), free of package testing.
//
//	func TestAgent(t *testing.T) {
//		k := faketest.New(t)      // checked and closed when the test ends
//		dev := faketest.Open(t, k) // closed when the test ends
//		// the agent's first stage, on dev
//		faketest.Kexec(t, k)
//		dev = faketest.Open(t, k)  // the next kernel
//		// the agent's second stage
//	}
//
// The fake needs Linux; elsewhere New skips the test.
package faketest

import (
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
)

// New starts a fake kernel configured by opts, failing the test (Fatal)
// when fake.New fails, and skipping it off Linux, where there is no fake.
// When the test and its subtests have ended, after cleanups registered
// later (such as Open's), it fails the test (Error) when the kernel's
// CheckInvariants fails or when a fault armed by a Fail method never
// fired (CheckFaults), then closes the kernel. The checks run on a
// kernel the test closed itself too.
func New(t testing.TB, opts ...fake.Option) *fake.Kernel {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the fake LUO kernel needs Linux, not %s", runtime.GOOS)
	}
	k, err := fake.New(opts...)
	if err != nil {
		t.Fatalf("fake.New: %v", err)
	}
	t.Cleanup(func() {
		if err := k.CheckInvariants(); err != nil && !errors.Is(err, fake.ErrKernelClosed) {
			t.Errorf("fake kernel at the end of the test: %v", err)
		}
		if err := k.CheckFaults(); err != nil {
			t.Errorf("%v (an error path the test armed was not taken)", err)
		}
		if err := k.Close(); err != nil && !errors.Is(err, fake.ErrKernelClosed) {
			t.Errorf("fake kernel Close: %v", err)
		}
	})
	return k
}

// Open opens k's device, failing the test (Fatal) when Kernel.Open
// fails, and closes the device when the test ends unless the test has.
func Open(t testing.TB, k *fake.Kernel) *liveupdate.Device {
	t.Helper()
	d, err := k.Open()
	if err != nil {
		t.Fatalf("open the fake's device: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Kexec performs k's live update, failing the test (Fatal) when
// Kernel.Kexec fails, and then closes old, the old kernel's fds (which
// answer ESTALE after the live update), ignoring their errors.
func Kexec(t testing.TB, k *fake.Kernel, old ...io.Closer) {
	t.Helper()
	if err := k.Kexec(); err != nil {
		t.Fatalf("fake kexec: %v", err)
	}
	for _, c := range old {
		c.Close()
	}
}

// Listen serves k's device on a unix socket in a directory of the test's
// (Kernel.Listen), failing the test (Fatal) when it cannot, and stops
// serving when the test ends. It returns the socket's path, which
// liveupdate.Open opens as it opens /dev/liveupdate, from this process or
// another.
func Listen(t testing.TB, k *fake.Kernel) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "liveupdate")
	stop, err := k.Listen(path)
	if err != nil {
		t.Fatalf("fake listen on %s: %v", path, err)
	}
	t.Cleanup(func() { stop() })
	return path
}
