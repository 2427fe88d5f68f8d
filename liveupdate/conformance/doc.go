// Package conformance is one test suite for Live Update Orchestrator
// implementations: the Linux kernel's /dev/liveupdate and the fake kernel of
// package fake. Both answer the same requests with the same errnos, and this
// suite is where that is checked, case by case, against what the kernel's
// code and selftests (tools/testing/selftests/liveupdate) say.
//
// # Using it
//
// A test describes the implementation as a Target and hands it to Run.
// For package fake, which cannot freeze a memfd's size but checks it at
// Kexec:
//
//	func TestConformance(t *testing.T) {
//		features := conformance.Linux7_2Features()
//		features.SizeFreezeEnforced = false
//		features.SizeChangeFailsKexec = true
//		k, err := fake.New()
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { k.Close() })
//		conformance.Run(t, conformance.Target{
//			Name:     "fake",
//			Open:     k.Open,
//			Kexec:    k.Kexec,
//			Reboot:   k.Reboot,
//			Features: features,
//		})
//	}
//
// Run runs every case as a subtest (go test -run 'TestConformance/preserve/'
// picks a group). Each case opens the device itself, cleans up every file
// descriptor it opened, and fails if the process holds more descriptors
// after it than before (once the target has released the sessions the case
// closed).
//
// Agents that wrap this package can run the suite against the fake kernel
// they test with, to learn that it behaves as the kernel they will meet.
// Kernel builders and CI systems with a LUO-enabled kernel run it against
// the real device: package liveupdate's TestKernelConformance does that
// whenever /dev/liveupdate exists (as root, with nothing else holding the
// device), with Kexec nil, so the cases that need a live update skip. A
// test rig that can kexec and re-enter the test (a VM that runs stage 2 of a
// test after the reboot) is not something Run can drive: Kexec must return
// in the same process.
//
// Features says which kernel release's behaviour the target follows
// (Linux7_2Features, Linux6_19Features, or a mix for a kernel in between);
// a case whose behaviour differs between releases checks the one the
// features name, and skips, saying why, when the older behaviour is not
// known well enough to check or is unsafe to provoke.
package conformance
