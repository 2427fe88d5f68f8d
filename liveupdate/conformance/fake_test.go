//go:build linux

package conformance_test

import (
	"sync"
	"testing"

	"github.com/go-luo/luo/liveupdate/conformance"
	"github.com/go-luo/luo/liveupdate/fake"
)

// fakeTarget starts a fake kernel with opts for the conformance suite.
func fakeTarget(t *testing.T, name string, f conformance.Features, opts ...fake.Option) conformance.Target {
	t.Helper()
	k, err := fake.New(opts...)
	if err != nil {
		t.Fatalf("fake.New: %v", err)
	}
	t.Cleanup(func() {
		if err := k.CheckInvariants(); err != nil {
			t.Errorf("fake kernel invariants after the suite: %v", err)
		}
		k.Close()
	})
	// A fake cannot freeze a memfd's size; it checks it at Kexec.
	f.SizeFreezeEnforced = false
	f.SizeChangeFailsKexec = true
	return conformance.Target{
		Name:     name,
		Open:     k.Open,
		Kexec:    k.Kexec,
		Features: f,
		// The fake can make a handler's retrieve fail; the sticky
		// retrieve case needs that.
		FailRetrieve: k.FailRetrieve,
	}
}

// newestInProcess holds what TestFakeNewest found, for TestFakeSplit to
// compare its split run with.
var newestInProcess struct {
	sync.Mutex
	r conformance.Results
}

// TestFakeNewest runs the suite against a fake of the newest kernel.
func TestFakeNewest(t *testing.T) {
	r := conformance.Run(t, fakeTarget(t, "fake newest", conformance.NewestFeatures()))
	newestInProcess.Lock()
	newestInProcess.r = r
	newestInProcess.Unlock()
}

// TestFakeFirstMerged runs the suite against a fake of the first merged
// kernel.
func TestFakeFirstMerged(t *testing.T) {
	conformance.Run(t, fakeTarget(t, "fake first-merged", conformance.FirstMergedFeatures(),
		fake.WithGeneration(fake.FirstMerged)))
}

// TestFakeSeedGetName runs the suite against a fake with the seed's
// GET_NAME layout.
func TestFakeSeedGetName(t *testing.T) {
	f := conformance.NewestFeatures()
	f.SeedGetName = true
	conformance.Run(t, fakeTarget(t, "fake seed GET_NAME", f, fake.WithSeedGetName()))
}

// TestFakeMemfdV2 runs the suite against a fake with memfd-v2, where any fd
// of a preserved memfd is the same file.
func TestFakeMemfdV2(t *testing.T) {
	f := conformance.NewestFeatures()
	f.PreserveByInode = true
	conformance.Run(t, fakeTarget(t, "fake memfd-v2", f, fake.WithMemfdV2()))
}

// TestFakeLimits runs the suite against a fake with low limits, so that
// the limit cases run.
func TestFakeLimits(t *testing.T) {
	f := conformance.NewestFeatures()
	f.MaxSessions = 40
	f.MaxFiles = 30
	conformance.Run(t, fakeTarget(t, "fake with limits", f, fake.WithMaxSessions(40), fake.WithMaxFiles(30)))
}
