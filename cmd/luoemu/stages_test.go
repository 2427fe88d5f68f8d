//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requiredEnv, set to 1, turns the skips of the tests that need the
// kernel's selftests or python3 into failures, for CI.
const requiredEnv = "LUOEMU_SELFTESTS_REQUIRED"

// required tells whether requiredEnv asks for every test to run.
func required() bool { return os.Getenv(requiredEnv) == "1" }

// skipOrFail skips t with why, or fails it when requiredEnv is set.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if required() {
		t.Fatalf("%s (and %s=1)", why, requiredEnv)
	}
	t.Skip(why)
}

// hangGuard bounds a wait that should end at once, so that a broken
// luoemu fails a test instead of hanging it. It is no timing assertion.
const hangGuard = 2 * time.Minute

// runOut runs cmd with a hang guard and returns its combined output and
// exit code (-1 when it did not exit normally).
func runOut(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not end within %v; output:\n%s", cmd.Args, hangGuard, out.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("%v: %v", cmd.Args, err)
		return "", 0
	}
}

// imagePath is a fresh image file's path for a two-run test.
func imagePath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "image")
}

// imageSize is the size of the image file, 0 when it is missing.
func imageSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// pidsIn returns the numbers re's first group matches in out.
func pidsIn(t *testing.T, out string, re *regexp.Regexp) []int {
	t.Helper()
	var pids []int
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		p, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p)
	}
	return pids
}

// assertGone fails t unless each pid is gone: a daemon of the tree must
// not outlive the live update.
func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, p := range pids {
		if err := unix.Kill(p, 0); err != unix.ESRCH {
			t.Errorf("pid %d outlived the live update (kill 0: %v)", p, err)
		}
	}
}

// parentOf is the parent pid of pid, from /proc/PID/stat.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, errors.New("short /proc stat")
	}
	return strconv.Atoi(f[1])
}

// startBackground starts cmd with its output scanned line by line: the
// lines come on the returned channel (closed at EOF), and the whole
// output is kept in out.
func startBackground(t *testing.T, cmd *exec.Cmd, out *safeBuffer) <-chan string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		defer r.Close()
		sc := bufio.NewScanner(io.TeeReader(r, out))
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return lines
}

// waitLine reads lines until one contains want, and returns it; it
// fails t when the output ends first.
func waitLine(t *testing.T, lines <-chan string, want string, out *safeBuffer) string {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the output ended without %q:\n%s", want, out.String())
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q within %v:\n%s", want, hangGuard, out.String())
		}
	}
}

// waitExit waits for cmd, started by startBackground, and returns its
// exit code, after its output has ended.
func waitExit(t *testing.T, cmd *exec.Cmd, lines <-chan string) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not end within %v", cmd.Args, hangGuard)
	}
	for range lines {
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// controlPath is a path for a -control socket, short enough for
// sockaddr_un wherever TMPDIR is.
func controlPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "luoemu-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ctl")
}

// poll calls cond until it is true, for at most hangGuard, and tells
// whether it became true: for a state the tree reaches at its own pace.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(hangGuard)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
