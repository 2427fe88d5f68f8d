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
// kernel's /dev/liveupdate, when there is one. It needs the device to
// itself: run it as root with no live-update agent holding the device.
//
// On its own it cannot kexec, so the cases that need incoming sessions
// skip. In a VM rig that serves a split run (conformance.SplitFromEnv:
// LUO_CONFORMANCE_BOOT, LUO_CONFORMANCE_RUN, LUO_CONFORMANCE_HOLD), it runs
// the boot the environment names, and no case skips for want of a kexec.
// With LUO_CONFORMANCE_RESULTS set it writes what it found to that file
// (conformance.Results.WriteTo), one file per boot for the rig to merge.
func TestKernelConformance(t *testing.T) {
	split, err := conformance.SplitFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*liveupdate.Device, error) { return liveupdate.Open(liveupdate.DefaultPath) }
	// Opened, not stat'ed, first: under luoemu the device exists only
	// for open(2).
	d, err := open()
	switch {
	case errors.Is(err, os.ErrNotExist) && split != nil:
		t.Fatalf("boot %d of split run %q, but no %s: %v", split.Boot, split.RunID, liveupdate.DefaultPath, err)
	case errors.Is(err, os.ErrNotExist):
		t.Skip("no /dev/liveupdate: needs Linux 6.19+ with CONFIG_LIVEUPDATE and CONFIG_KEXEC_HANDOVER, KHO enabled, boot with liveupdate=on (or run the test under luoemu)")
	case split != nil && err != nil:
		t.Fatalf("boot %d of split run %q: open %s: %v", split.Boot, split.RunID, liveupdate.DefaultPath, err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		t.Skipf("cannot open %s (run the test as root): %v", liveupdate.DefaultPath, err)
	case errors.Is(err, syscall.EBUSY):
		t.Skipf("%s is held by another process (a live-update agent?); the suite needs it to itself: %v", liveupdate.DefaultPath, err)
	case err != nil:
		t.Fatalf("open %s: %v", liveupdate.DefaultPath, err)
	}
	d.Close()
	r := conformance.Run(t, conformance.Target{
		Name:     "kernel",
		Open:     open,
		Features: conformance.Linux7_2Features(),
		Split:    split,
	})
	if path := os.Getenv(conformance.ResultsEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatalf("%s: %v", conformance.ResultsEnv, err)
		}
		_, err = r.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("%s: write %s: %v", conformance.ResultsEnv, path, err)
		}
	}
}
