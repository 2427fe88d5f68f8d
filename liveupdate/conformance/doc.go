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
// device). On its own it has no Kexec, so the cases that need a live
// update skip; in a split run (below) none does.
//
// Run returns the outcome of each case (Results), which Results.WriteTo
// writes as sorted lines "PASS GROUP/CASE", "FAIL GROUP/CASE" and
// "SKIP GROUP/CASE: REASON", and ParseResults reads back.
//
// Features says which kernel release's behaviour the target follows
// (Linux7_2Features, Linux6_19Features, or a mix for a kernel in between);
// a case whose behaviour differs between releases checks the one the
// features name, and skips, saying why, when the older behaviour is not
// known well enough to check or is unsafe to provoke.
//
// # Split runs
//
// Where a live update is a real kexec, each kernel runs the test binary
// anew: a split run is a chain of SplitBoots() boots (now 3), linked by
// kexecs, that run the suite with Target.Split set. Boot 0 runs every
// case; a case that spans live updates runs its first stage there, and its
// stage N in boot N, under the same subtest name, with nothing from the
// earlier boots but what the kernel carried (its session names derive from
// Split.RunID and the case's name). A later boot runs only the cases with
// a stage in it: the others have no subtest and no entry in its Results.
// At the end of each boot but the last, the sessions the next stages need
// are handed to Split.Hold, which keeps them open through the kexec; the
// descriptor check of a case does not count them, nor those a fake kernel
// in the same process holds for them. A case's outcome is MergeResults of
// its boots' (FAIL over SKIP over PASS).
//
// SplitFromEnv reads a split run's boot from the environment, as a rig
// serves it:
//
//   - LUO_CONFORMANCE_BOOT: the boot, in decimal, 0 to SplitBoots()-1.
//   - LUO_CONFORMANCE_RUN: the run ID, the same in every boot of the chain:
//     1 to 16 bytes of ASCII letters, digits, '-' and '_'.
//   - LUO_CONFORMANCE_HOLD: the path of a unix stream (SOCK_STREAM) socket
//     the rig listens on (or @NAME, an abstract socket), at most 107 bytes.
//   - LUO_CONFORMANCE_RESULTS (read by TestKernelConformance, optional):
//     a file to write the boot's Results to.
//
// All three of the first are needed when any is set; none set means no
// split run. Hold, at the end of a boot but the last, connects to the hold
// socket and sends, on that connection:
//
//   - for each group of at most 250 session fds, one message of 1 data
//     byte 'F' (0x46) with one SCM_RIGHTS control message carrying them
//     (none when no session is kept);
//   - then one message of 1 byte 'E' (0x45) without control data.
//
// The rig reads one byte per recvmsg, with room for 250 fds of control
// data, and once it holds every fd answers 1 byte 'K' (0x4B). Hold then
// closes its own copies and returns; any other answer, or the connection
// closed without one, is an error. Hold gives up after a minute. The rig
// keeps the fds open until it kexecs into the next boot: the kernel drops
// a session when its last fd closes, and the test process exits first.
package conformance
