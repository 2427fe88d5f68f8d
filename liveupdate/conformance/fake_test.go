//go:build linux

package conformance_test

import (
	"sync"
	"testing"

	"github.com/go-luo/luo/liveupdate/conformance"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
)

// fakeTarget starts a fake kernel with opts for the conformance suite.
func fakeTarget(t *testing.T, name string, f conformance.Features, opts ...fake.Option) conformance.Target {
	t.Helper()
	k := faketest.New(t, opts...) // checks invariants and faults after the suite
	// A fake cannot freeze a memfd's size; it checks it at Kexec.
	f.SizeFreezeEnforced = false
	f.SizeChangeFailsKexec = true
	return conformance.Target{
		Name:     name,
		Open:     k.Open,
		Kexec:    k.Kexec,
		Reboot:   k.Reboot,
		Features: f,
		// The fake can make a handler's retrieve fail; the sticky
		// retrieve case needs that.
		FailRetrieve: k.FailRetrieve,
	}
}

// defaultInProcess holds what TestFakeLinux7_2 found, for TestFakeSplit to
// compare its split run with.
var defaultInProcess struct {
	sync.Mutex
	r conformance.Results
}

// TestFakeLinux7_2 runs the suite against the fake's default, Linux 7.2.
func TestFakeLinux7_2(t *testing.T) {
	r := conformance.Run(t, fakeTarget(t, "fake linux-7.2", conformance.Linux7_2Features()))
	defaultInProcess.Lock()
	defaultInProcess.r = r
	defaultInProcess.Unlock()
}

// TestFakeLinux6_19 runs the suite against a fake of Linux 6.19.
func TestFakeLinux6_19(t *testing.T) {
	conformance.Run(t, fakeTarget(t, "fake linux-6.19", conformance.Linux6_19Features(),
		fake.WithGeneration(fake.Linux6_19)))
}

// TestFakeLimits runs the suite against a fake with low limits, so that
// the limit cases run.
func TestFakeLimits(t *testing.T) {
	f := conformance.Linux7_2Features()
	f.MaxSessions = 40
	f.MaxFiles = 30
	conformance.Run(t, fakeTarget(t, "fake with limits", f, fake.WithMaxSessions(40), fake.WithMaxFiles(30)))
}
