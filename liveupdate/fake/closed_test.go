//go:build linux

package fake_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// After Close, Open, Kexec, Reboot and Close say the kernel is closed,
// whatever state it was left in: not EIO ("could not restore"), not
// EBUSY (a device never released), not success.
func TestClosedKernel(t *testing.T) {
	for _, held := range []bool{false, true} {
		name := "no device"
		if held {
			name = "device held"
		}
		t.Run(name, func(t *testing.T) {
			k, err := fake.New()
			if err != nil {
				t.Fatal(err)
			}
			if held {
				d, err := k.Open()
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				s, err := d.CreateSession("s")
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
			closed := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, liveupdate.ErrClosed) || !errors.Is(err, os.ErrClosed) {
					t.Errorf("%s after Close: %v, want ErrKernelClosed matching liveupdate.ErrClosed and os.ErrClosed", what, err)
				}
				if errors.Is(err, unix.EIO) || errors.Is(err, unix.EBUSY) {
					t.Errorf("%s after Close: %v matches EIO or EBUSY", what, err)
				}
			}
			d, err := k.Open()
			if d != nil {
				d.Close()
			}
			closed("Open", err)
			closed("Kexec", k.Kexec())
			closed("Reboot", k.Reboot())
			stop, err := k.Listen(filepath.Join(t.TempDir(), "dev"))
			if stop != nil {
				stop()
			}
			closed("Listen", err)
			closed("CheckInvariants", k.CheckInvariants())
			closed("Close", k.Close())
		})
	}
}
