//go:build linux

package fake_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate/fake/faketest"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// A failed Kexec returns a *KexecError naming the session and, when one
// file's freeze failed, its token; the cause stays matchable.
func TestKexecError(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("vm")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, "abcd")
	defer m.Close()
	if err := s.Preserve(m, 99); err != nil {
		t.Fatal(err)
	}

	// The session fails as a whole.
	if err := k.FailFreeze("vm", unix.EIO); err != nil {
		t.Fatal(err)
	}
	err = k.Kexec()
	var ke *fake.KexecError
	if !errors.As(err, &ke) || ke.Session != "vm" || ke.File || !errors.Is(err, unix.EIO) {
		t.Fatalf("Kexec with FailFreeze = %#v, want a KexecError for session vm matching EIO", err)
	}
	if want := `fake: kexec: freeze session "vm": input/output error`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	var le *liveupdate.Error
	if errors.As(err, &le) {
		t.Errorf("Kexec error %v holds a liveupdate.Error", err)
	}

	// One file fails: a memfd whose size changed while preserved.
	if err := unix.Ftruncate(int(m.Fd()), 8192); err != nil {
		t.Fatal(err)
	}
	err = k.Kexec()
	var fs *fake.FrozenSizeError
	if !errors.As(err, &ke) || ke.Session != "vm" || !ke.File || ke.Token != 99 ||
		!errors.As(err, &fs) || !errors.Is(err, unix.EPERM) {
		t.Fatalf("Kexec after a resize = %#v, want a KexecError for vm token 99 holding a FrozenSizeError", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, `fake: kexec: freeze session "vm" token 99 (0x63): `) {
		t.Errorf("Error() = %q", msg)
	}

	if err := k.CheckInvariants(); err != nil {
		t.Fatalf("invariants after the failed kexecs: %v", err)
	}
	// After Close: a KexecError holding ErrKernelClosed.
	k.Close()
	err = k.Kexec()
	if !errors.As(err, &ke) || ke.Session != "" || !errors.Is(err, fake.ErrKernelClosed) {
		t.Errorf("Kexec after Close = %v, want a KexecError matching ErrKernelClosed", err)
	}
	if err := k.Reboot(); err != fake.ErrKernelClosed {
		t.Errorf("Reboot after Close = %v, want ErrKernelClosed", err)
	}
}

// The restore fault's error says once what failed.
func TestRestoreErrorText(t *testing.T) {
	k := faketest.New(t)
	if err := k.FailRestore(unix.EIO); err != nil {
		t.Fatal(err)
	}
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	_, err := k.Open()
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("Open after FailRestore = %v, want EIO", err)
	}
	if n := strings.Count(err.Error(), "input/output error"); n != 1 {
		t.Errorf("%q says input/output error %d times", err, n)
	}
	if n := strings.Count(err.Error(), "restore"); n != 1 {
		t.Errorf("%q speaks of the restore %d times", err, n)
	}
}
