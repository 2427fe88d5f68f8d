//go:build linux

package liveupdate_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/conformance"
)

// TestKernelConformance runs the conformance suite against the running
// kernel's /dev/liveupdate, when there is one. It cannot kexec, so the cases
// that need incoming sessions skip. It needs the device to itself: run it as
// root with no live-update agent holding the device.
func TestKernelConformance(t *testing.T) {
	if _, err := os.Stat(liveupdate.DefaultPath); err != nil {
		t.Skip("no /dev/liveupdate: needs Linux 6.19+ with CONFIG_LIVEUPDATE and CONFIG_KEXEC_HANDOVER, KHO enabled, boot with liveupdate=on")
	}
	open := func() (*liveupdate.Device, error) { return liveupdate.Open(liveupdate.DefaultPath) }
	d, err := open()
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		t.Skipf("cannot open %s (run the test as root): %v", liveupdate.DefaultPath, err)
	case errors.Is(err, syscall.EBUSY):
		t.Skipf("%s is held by another process (a live-update agent?); the suite needs it to itself: %v", liveupdate.DefaultPath, err)
	case err != nil:
		t.Fatalf("open %s: %v", liveupdate.DefaultPath, err)
	}
	d.Close()
	conformance.Run(t, conformance.Target{
		Name:     "kernel",
		Open:     open,
		Features: conformance.Linux7_2Features(),
	})
}
