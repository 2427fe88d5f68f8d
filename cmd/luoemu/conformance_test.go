//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// knownDeviations are the conformance cases luoemu fails by design, with
// why: the seccomp filter sends luoemu only ioctls of LUO's type 0xBA (a
// VMM's KVM ioctls must not pay for luoemu), so an ioctl of another type
// on a fake fd is the socket's. The kernel's LUO ioctl looks at the nr
// alone before it reads the size field, so it answers EFAULT for such a
// request with a bad argument where the socket answers ENOTTY.
var knownDeviations = map[string]string{
	"dispatch_device/encoding_checked_after_reading_size":  "another ioctl type on a fake fd is not sent to luoemu",
	"dispatch_session/encoding_checked_after_reading_size": "another ioctl type on a fake fd is not sent to luoemu",
}

// TestConformanceUnderLuoemu runs the conformance suite's kernel target,
// the package liveupdate test binary as an unmodified program would run
// on a LUO kernel, under luoemu: every case must pass but the known
// deviations, which must still fail (else the list is stale). The cases
// that need a kexec skip, as on a kernel without a rig.
func TestConformanceUnderLuoemu(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance suite")
	}
	bin := filepath.Join(t.TempDir(), "liveupdate.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "../../liveupdate").CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./liveupdate: %v\n%s", err, out)
	}
	cmd := luoemu(nil, bin, "-test.run", "^TestKernelConformance$", "-test.v")
	cmd.Dir = t.TempDir()
	out, _ := cmd.CombinedOutput()
	results := map[string]string{}
	re := regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): TestKernelConformance/(\S+)`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		results[m[2]] = m[1]
	}
	if len(results) == 0 {
		t.Fatalf("no conformance results in the output:\n%s", out)
	}
	var failed, passed []string
	for name, r := range results {
		if !strings.Contains(name, "/") {
			continue // a group
		}
		switch {
		case r == "FAIL" && knownDeviations[name] == "":
			failed = append(failed, name)
		case r == "PASS" && knownDeviations[name] != "":
			t.Errorf("%s passes now: remove it from knownDeviations", name)
		case r == "PASS":
			passed = append(passed, name)
		}
	}
	sort.Strings(failed)
	for _, name := range failed {
		t.Errorf("%s fails under luoemu", name)
	}
	if len(failed) > 0 {
		t.Logf("output:\n%s", out)
	}
	for name := range knownDeviations {
		if results[name] != "FAIL" {
			t.Errorf("known deviation %s: got %q, want FAIL", name, results[name])
		}
	}
	t.Logf("%d cases pass under luoemu, %d known deviations", len(passed), len(knownDeviations))
}
