//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// pythonPID is the stage 1 process of testdata/luo.py, which holds the
// session until the live update kills it.
var pythonPID = regexp.MustCompile(`stage 1: pid (\d+) preserved 4300 bytes under token 0x5eed`)

const pythonPassed = "stage 2: PASSED: 4300 bytes back from token 0x5eed, session finished"

// python3 returns the python3 interpreter and the script, or skips t
// (fails it when required).
func python3(t *testing.T) (python, script string) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("testdata/luo.py computes the x86_64 request numbers")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		skipOrFail(t, "no python3 in $PATH")
	}
	script, err = filepath.Abs("testdata/luo.py")
	if err != nil {
		t.Fatal(err)
	}
	return python, script
}

// TestPython runs testdata/luo.py, a Python program using LUO through
// fcntl.ioctl, across a live update: stage 1 preserves a memfd and runs
// "luoemu kexec" itself, or waits while the test asks for it from
// outside the tree; stage 2 retrieves it, checks its bytes and finishes
// the session.
func TestPython(t *testing.T) {
	t.Parallel() // each subtest has its own images and luoemu runs
	python, script := python3(t)
	stage2 := func(t *testing.T, img string) {
		out, code := runOut(t, luoemu([]string{"-image", img}, python, script, "stage2"))
		if code != 0 || !strings.Contains(out, pythonPassed) {
			t.Fatalf("stage 2: exit %d, want 0 and %q:\n%s", code, pythonPassed, out)
		}
	}
	t.Run("kexec-in-tree", func(t *testing.T) {
		t.Parallel()
		img := imagePath(t)
		cmd := luoemu([]string{"-image", img}, python, script, "stage1", "kexec")
		cmd.Env = append(os.Environ(), "LUOEMU="+luoemuBin)
		out, code := runOut(t, cmd)
		if code != 0 {
			t.Fatalf("stage 1: luoemu exited %d:\n%s", code, out)
		}
		if strings.Contains(out, "luoemu kexec returned") {
			t.Fatalf("stage 1 outlived its live update:\n%s", out)
		}
		pids := pidsIn(t, out, pythonPID)
		if len(pids) != 1 {
			t.Fatalf("stage 1 named %d pids:\n%s", len(pids), out)
		}
		assertGone(t, pids)
		stage2(t, img)
	})
	t.Run("kexec-from-outside", func(t *testing.T) {
		t.Parallel()
		img, ctl := imagePath(t), controlPath(t)
		cmd := luoemu([]string{"-image", img, "-control", ctl}, python, script, "stage1", "wait")
		var out safeBuffer
		lines := startBackground(t, cmd, &out)
		waitLine(t, lines, "READY", &out)
		pids := pidsIn(t, out.String(), pythonPID)
		if len(pids) != 1 {
			t.Fatalf("stage 1 named %d pids:\n%s", len(pids), out.String())
		}
		kexec := exec.Command(luoemuBin, "kexec", "-control", ctl)
		kexec.Env = withoutEnv(os.Environ(), ControlEnv)
		if kout, code := runOut(t, kexec); code != 0 {
			t.Fatalf("luoemu kexec -control: exit %d:\n%s", code, kout)
		}
		if code := waitExit(t, cmd, lines); code != 0 {
			t.Fatalf("luoemu exited %d after the kexec:\n%s", code, out.String())
		}
		assertGone(t, pids)
		stage2(t, img)
	})
	// Without a live update the session is not there: stage 2 must fail.
	t.Run("stage2-without-kexec", func(t *testing.T) {
		t.Parallel()
		out, code := runOut(t, luoemu([]string{"-image", imagePath(t)}, python, script, "stage2"))
		if code == 0 || !strings.Contains(out, "FileNotFoundError: [Errno 2]") {
			t.Errorf("stage 2 on a fresh boot: exit %d, want a failure with ENOENT:\n%s", code, out)
		}
	})
}
