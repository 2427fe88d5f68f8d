//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// holderPID is the process an example's stage 1 leaves holding its
// sessions until the kexec.
var holderPID = regexp.MustCompile(`(?m)^holder: pid (\d+) holds`)

// TestExamples runs the examples handoff and kexec-selftests, unmodified
// and with -device /dev/liveupdate, across two luoemu runs: stage 1 of
// both, then "luoemu kexec" in the tree; stage 2 of both in the next.
func TestExamples(t *testing.T) {
	t.Parallel() // its own binaries, images and luoemu runs
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../../examples/handoff", "../../examples/kexec-selftests")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	handoff, selftests := filepath.Join(bin, "handoff"), filepath.Join(bin, "kexec-selftests")
	img := imagePath(t)
	script := `"$1" -device /dev/liveupdate -stage $3 && "$2" -test all -device /dev/liveupdate -stage $3`
	out, code := runOut(t, luoemu([]string{"-image", img},
		"sh", "-c", script+` && exec "$4" kexec`, "sh", handoff, selftests, "1", luoemuBin))
	if code != 0 {
		t.Fatalf("stage 1: luoemu exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		`stage 1: preserved it under token 1`,
		"kexec-selftests: stage 1: 4 ready for stage 2, 0 failed, 0 skipped",
		"luoemu: live update: the sessions are in " + img,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stage 1 did not print %q", want)
		}
	}
	holders := pidsIn(t, out, holderPID)
	if len(holders) != 2 {
		t.Errorf("stage 1 named %d holders, want 2 (one per example)", len(holders))
	}
	assertGone(t, holders)
	if t.Failed() {
		t.Fatalf("stage 1 output:\n%s", out)
	}
	out, code = runOut(t, luoemu([]string{"-image", img}, "sh", "-c", script, "sh", handoff, selftests, "2"))
	if code != 0 {
		t.Fatalf("stage 2: luoemu exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		`stage 2: counter 42 (41 + 1)`,
		"OK: the state survived the live update",
		"--- SIMPLE KEXEC TEST PASSED ---",
		"--- MULTI-SESSION KEXEC TEST PASSED ---",
		"--- MANY-SESSIONS KEXEC TEST PASSED (",
		"--- MANY-FILES KEXEC TEST PASSED (",
		"kexec-selftests: 4 passed, 0 failed, 0 skipped (/dev/liveupdate)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stage 2 did not print %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stage 2 output:\n%s", out)
	}
}
