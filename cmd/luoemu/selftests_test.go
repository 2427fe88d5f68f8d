//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// selftestsEnv names the directory of the kernel's built liveupdate
// selftests when -selftests does not ("go run ./cmd/luovm -selftests-dir"
// prints it).
const selftestsEnv = "LUOEMU_SELFTESTS"

var selftestsFlag = flag.String("selftests", "", "the `dir`ectory of the kernel's built liveupdate selftests (default $"+selftestsEnv+")")

// twoStagePrograms are the kernel's two-stage selftests and the line
// each prints when its stage 2 has passed.
var twoStagePrograms = []struct{ name, passed string }{
	{"luo_kexec_simple", "--- SIMPLE KEXEC TEST PASSED ---"},
	{"luo_multi_session", "--- MULTI-SESSION KEXEC TEST PASSED ---"},
	{"luo_stress_files", "--- MANY-FILES KEXEC TEST PASSED ("},
	{"luo_stress_sessions", "--- MANY-SESSIONS KEXEC TEST PASSED ("},
}

// minLiveupdateTests is how many tests the liveupdate program of Linux
// 7.2.13 has; a later source may add some.
const minLiveupdateTests = 15

// selftestsDir is the selftests' directory, every program checked to be
// there; t is skipped (or failed, when required) without one.
func selftestsDir(t *testing.T) string {
	t.Helper()
	dir := *selftestsFlag
	if dir == "" {
		dir = os.Getenv(selftestsEnv)
	}
	if dir == "" {
		skipOrFail(t, "no kernel selftests: give -selftests DIR or $"+selftestsEnv+" (go run ./cmd/luovm -selftests-dir builds them)")
	}
	for _, p := range append([]string{"liveupdate"}, programNames()...) {
		if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("selftests directory %s: no program %s (%v)", dir, p, err)
		}
	}
	return dir
}

func programNames() []string {
	var names []string
	for _, p := range twoStagePrograms {
		names = append(names, p.name)
	}
	return names
}

var (
	tapPlan   = regexp.MustCompile(`(?m)^1\.\.(\d+)$`)
	tapResult = regexp.MustCompile(`(?m)^(not ok|ok) (\d+)( .*)?$`)
	tapPassed = regexp.MustCompile(`(?m)^# PASSED: (\d+) / (\d+) tests passed\.$`)
	// childPID is the daemon a two-stage selftest's stage 1 forks.
	childPID = regexp.MustCompile(`\[STAGE 1\] Child PID: (\d+)\.`)
)

// tapProblems reads out as a kselftest TAP run and returns its number
// of tests and what is wrong with it: each planned test must be "ok"
// once, none skipped or "not ok", and the summary must say all passed.
func tapProblems(out string) (n int, problems []string) {
	m := tapPlan.FindStringSubmatch(out)
	if m == nil {
		return 0, []string{"no TAP plan (1..N)"}
	}
	n, _ = strconv.Atoi(m[1])
	seen := map[int]bool{}
	for _, r := range tapResult.FindAllStringSubmatch(out, -1) {
		i, _ := strconv.Atoi(r[2])
		switch {
		case r[1] == "not ok":
			problems = append(problems, "failed: "+r[0])
		case strings.Contains(r[3], "# SKIP"):
			problems = append(problems, "skipped: "+r[0])
		case seen[i]:
			problems = append(problems, fmt.Sprintf("test %d reported twice", i))
		}
		seen[i] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			problems = append(problems, fmt.Sprintf("no result for test %d of %d", i, n))
		}
	}
	if len(seen) != n {
		problems = append(problems, fmt.Sprintf("%d results for a plan of %d", len(seen), n))
	}
	want := fmt.Sprintf("# PASSED: %d / %d tests passed.", n, n)
	if m := tapPassed.FindStringSubmatch(out); m == nil || m[0] != want {
		problems = append(problems, fmt.Sprintf("no %q line", want))
	}
	return n, problems
}

func TestTAPProblems(t *testing.T) {
	good := "TAP version 13\n1..2\nok 1 a\nok 2 b\n# PASSED: 2 / 2 tests passed.\n"
	if n, p := tapProblems(good); n != 2 || p != nil {
		t.Errorf("tapProblems(good) = %d, %q", n, p)
	}
	for _, bad := range []string{
		"1..2\nok 1 a\nnot ok 2 b\n# PASSED: 1 / 2 tests passed.\n",
		"1..2\nok 1 a\n# PASSED: 2 / 2 tests passed.\n",
		"1..2\nok 1 a\nok 2 b # SKIP no\n# PASSED: 2 / 2 tests passed.\n",
		"1..2\nok 1 a\nok 2 b\n",
		"1..2\nok 1 a\nok 1 a\nok 2 b\n# PASSED: 2 / 2 tests passed.\n",
		"ok 1 a\n# PASSED: 1 / 1 tests passed.\n",
	} {
		if _, p := tapProblems(bad); p == nil {
			t.Errorf("tapProblems passed a bad run:\n%s", bad)
		}
	}
}

// TestKernelSelftests runs the kernel's own liveupdate selftests under
// luoemu: the one-boot liveupdate program, and each two-stage program
// across two luoemu runs through an image, stage 1 ending with "luoemu
// kexec" from inside the tree.
func TestKernelSelftests(t *testing.T) {
	dir := selftestsDir(t)
	t.Run("liveupdate", func(t *testing.T) {
		out, code := runOut(t, luoemu(nil, filepath.Join(dir, "liveupdate")))
		if code != 0 {
			t.Errorf("liveupdate exited %d", code)
		}
		n, problems := tapProblems(out)
		for _, p := range problems {
			t.Error(p)
		}
		if n < minLiveupdateTests {
			t.Errorf("%d tests, want at least %d", n, minLiveupdateTests)
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	for _, p := range twoStagePrograms {
		t.Run(p.name, func(t *testing.T) {
			prog := filepath.Join(dir, p.name)
			img := imagePath(t)
			out, code := runOut(t, luoemu([]string{"-image", img},
				"sh", "-c", `"$1" --stage 1 && exec "$2" kexec`, "sh", prog, luoemuBin))
			if code != 0 {
				t.Fatalf("stage 1: luoemu exited %d:\n%s", code, out)
			}
			daemons := pidsIn(t, out, childPID)
			if len(daemons) != 1 {
				t.Fatalf("stage 1 named %d daemons, want 1:\n%s", len(daemons), out)
			}
			assertGone(t, daemons)
			if !strings.Contains(out, "luoemu: live update: the sessions are in "+img) || imageSize(t, img) == 0 {
				t.Fatalf("stage 1 left no image:\n%s", out)
			}
			out, code = runOut(t, luoemu([]string{"-image", img}, prog, "--stage", "2"))
			if code != 0 || !strings.Contains(out, p.passed) {
				t.Fatalf("stage 2: exit %d, want 0 and %q:\n%s", code, p.passed, out)
			}
			if imageSize(t, img) != 0 {
				t.Error("stage 2 left the image behind: a third run would boot it again")
			}
		})
	}
	// Stage 2 on a fresh boot finds no sessions: it must fail, or the
	// passes above prove nothing.
	t.Run("stage2-without-kexec", func(t *testing.T) {
		out, code := runOut(t, luoemu([]string{"-image", imagePath(t)},
			filepath.Join(dir, "luo_kexec_simple"), "--stage", "2"))
		if code == 0 || strings.Contains(out, "PASSED") {
			t.Errorf("stage 2 without a stage 1 passed (exit %d):\n%s", code, out)
		}
	})
}

// TestKernelSelftestsKexecFromOutside asks for the live update from
// outside the tree, through -control: stage 1 exits, its daemon stays in
// the tree (luoemu is its subreaper, so luoemu runs on), and "luoemu
// kexec -control SOCK" run by the test ends the tree and luoemu.
func TestKernelSelftestsKexecFromOutside(t *testing.T) {
	dir := selftestsDir(t)
	prog := filepath.Join(dir, "luo_kexec_simple")
	img, ctl := imagePath(t), controlPath(t)
	cmd := luoemu([]string{"-image", img, "-control", ctl}, prog, "--stage", "1")
	var out safeBuffer
	lines := startBackground(t, cmd, &out)
	waitLine(t, lines, "[STAGE 1] You may now perform kexec reboot.", &out)
	daemons := pidsIn(t, out.String(), childPID)
	if len(daemons) != 1 {
		t.Fatalf("stage 1 named %d daemons, want 1:\n%s", len(daemons), out.String())
	}
	d := daemons[0]
	// Stage 1 exits after printing; its daemon becomes luoemu's child.
	waitReparented(t, d, cmd.Process.Pid)
	if imageSize(t, img) != 0 {
		t.Fatal("an image before the kexec")
	}
	kexec := exec.Command(luoemuBin, "kexec", "-control", ctl)
	kexec.Env = withoutEnv(os.Environ(), ControlEnv)
	if kout, code := runOut(t, kexec); code != 0 {
		t.Fatalf("luoemu kexec -control: exit %d:\n%s", code, kout)
	}
	if code := waitExit(t, cmd, lines); code != 0 {
		t.Fatalf("luoemu exited %d after the kexec:\n%s", code, out.String())
	}
	assertGone(t, daemons)
	if imageSize(t, img) == 0 {
		t.Fatalf("no image after the kexec:\n%s", out.String())
	}
	// A second request finds no luoemu.
	kexec = exec.Command(luoemuBin, "kexec", "-control", ctl)
	if kout, code := runOut(t, kexec); code == 0 {
		t.Errorf("a second luoemu kexec succeeded:\n%s", kout)
	}
	out2, code := runOut(t, luoemu([]string{"-image", img}, prog, "--stage", "2"))
	if code != 0 || !strings.Contains(out2, "--- SIMPLE KEXEC TEST PASSED ---") {
		t.Fatalf("stage 2: exit %d:\n%s", code, out2)
	}
}

// waitReparented waits until pid's parent is luoemu (pid parent), and
// fails t if pid dies first.
func waitReparented(t *testing.T, pid, parent int) {
	t.Helper()
	var last int
	if !poll(func() bool {
		p, err := parentOf(pid)
		if err != nil {
			t.Fatalf("daemon %d is gone before the kexec: %v", pid, err)
		}
		last = p
		return p == parent
	}) {
		t.Fatalf("daemon %d has parent %d, want luoemu %d", pid, last, parent)
	}
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
