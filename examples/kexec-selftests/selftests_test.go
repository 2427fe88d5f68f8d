//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-luo/luo/examples/internal/cli"
	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/internal/testexec"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"github.com/go-luo/luo/liveupdate/hold"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the session holder that -device -stage 1
// starts (a copy of the running program, here the test binary), and the
// program itself when started as kexec-selftests (see selfBin).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == programName {
		main()
	}
	hold.Main(os.Args[1:])
	// Under -race, a child would sleep 1 s at exit by default.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// passedLines are the lines of a run in which every test passed.
var passedLines = []string{
	"--- SIMPLE KEXEC TEST PASSED ---",
	"PASSED simple (luo_kexec_simple)",
	"--- MULTI-SESSION KEXEC TEST PASSED ---",
	"PASSED multi-session (luo_multi_session)",
	"--- MANY-SESSIONS KEXEC TEST PASSED (2000 sessions) ---",
	"PASSED stress-sessions (luo_stress_sessions)",
	"--- MANY-FILES KEXEC TEST PASSED (500 files) ---",
	"PASSED stress-files (luo_stress_files)",
	"kexec-selftests: 4 passed, 0 failed, 0 skipped",
}

// checkLines fails unless out has every line of want, in order.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (in order):\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("output has a failure:\n%s", out)
	}
}

// TestAllFake runs -test all on the in-process fake, after a warm-up run of
// one test, and checks that it leaves no fd behind.
func TestAllFake(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-test", "luo_kexec_simple"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkLines(t, out.String(), []string{"PASSED simple", "1 passed, 0 failed"})
	before := fdtest.Table()
	out.Reset()
	if err := run([]string{"-test", "all"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if leaked := fdtest.Leaked(before, fdtest.Table()); len(leaked) > 0 {
		t.Errorf("the run left fds open: %v", leaked)
	}
	checkLines(t, out.String(), passedLines)
}

// TestUsage checks -h and the command-line mistakes, among them an
// unknown test.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-test", "nope"},
		{"-test", ""},
		{"-stage", "2"},
		{"-device", "d"},
		{"-image", "i", "-stage", "0"},
		{"-image", "i", "-device", "d", "-stage", "1"},
		{"extra"},
	} {
		var ue cli.UsageError
		if err := run(args, new(bytes.Buffer)); !errors.As(err, &ue) {
			t.Errorf("run %q: %v, want a usage error", args, err)
		}
	}
	err := run([]string{"-test", "nope"}, new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "simple, multi-session, stress-sessions, stress-files or all") {
		t.Errorf("unknown test: %v", err)
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"Usage:", "-test NAME", "-image FILE", "-device PATH", "-stage N"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

// runBin runs the built program and returns its stdout, stderr and exit
// status.
func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// programName is the name under which the test binary is the program.
const programName = "kexec-selftests"

// selfBin returns the program: the test binary, which holds every file of
// package main, under programName (so its TestMain runs main), with no go
// build.
func selfBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), programName)
	if err := testexec.LinkSelf(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestTwoProcesses runs the program twice, stage 1 and stage 2 of
// every test handing over through an image file, then stage 2 alone.
func TestTwoProcesses(t *testing.T) {
	t.Parallel() // its own processes, image files and fake; no fd count
	bin := selfBin(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "image")
	out, errOut, code := runBin(t, bin, "-image", image, "-stage", "1")
	if code != 0 || !strings.Contains(out, "stage 1: 4 ready for stage 2, 0 failed, 0 skipped") {
		t.Fatalf("stage 1: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBin(t, bin, "-image", image, "-stage", "2", "-test", "all")
	if code != 0 {
		t.Fatalf("stage 2: exit %d\n%s%s", code, out, errOut)
	}
	checkLines(t, out, passedLines)

	// Stage 2 after a live update that carried nothing.
	empty := filepath.Join(dir, "empty")
	k := faketest.New(t, fake.WithImageFile(empty))
	faketest.Kexec(t, k)
	k.Close()
	out, errOut, code = runBin(t, bin, "-image", empty, "-stage", "2", "-test", "multi-session")
	if code != 1 || !strings.Contains(out, "FAILED multi-session (luo_multi_session): ") ||
		!strings.Contains(out, "stage 1 did not run") || !strings.Contains(errOut, "1 of 1 tests failed") {
		t.Errorf("stage 2 without stage 1: exit %d, want 1\n%s%s", code, out, errOut)
	}

	_, errOut, code = runBin(t, bin, "-test", "nope")
	if code != 2 || !strings.Contains(errOut, `unknown test "nope"`) {
		t.Errorf("unknown test: exit %d, want 2\n%s", code, errOut)
	}
}

// startStage1 runs stage 1 on the fake served at sock as a device, checks
// that it left a holder, and returns the holder's pid.
func startStage1(t *testing.T, sock, test string) int {
	t.Helper()
	var out bytes.Buffer
	if err := run([]string{"-device", sock, "-stage", "1", "-test", test}, &out); err != nil {
		t.Fatalf("stage 1: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`holder: pid (\d+) holds (\d+) sessions`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "now kexec") {
		t.Fatalf("stage 1 names no holder:\n%s", out.String())
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// serve starts a fake kernel served on a unix socket, as /dev/liveupdate
// would be, and returns it and the socket's path.
func serve(t *testing.T) (*fake.Kernel, string) {
	k := faketest.New(t)
	sock := filepath.Join(t.TempDir(), "liveupdate")
	if _, err := k.Listen(sock); err != nil {
		t.Fatal(err)
	}
	return k, sock
}

// TestDevice runs every test in the -device mode against a fake kernel
// served on a unix socket: stage 1 must leave a detached holder of its 2010
// sessions that keeps them through the kexec.
func TestDevice(t *testing.T) {
	t.Parallel() // its own fake, socket and holder; no fd count
	k, sock := serve(t)
	pid := startStage1(t, sock, "all")
	if n := len(k.State().Outgoing); n != 2010 {
		t.Errorf("%d outgoing sessions held after stage 1, want 2010", n)
	}
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL) // the kexec ends it on a real machine

	var out bytes.Buffer
	if err := run([]string{"-device", sock, "-stage", "2"}, &out); err != nil {
		t.Fatalf("stage 2: %v\n%s", err, out.String())
	}
	checkLines(t, out.String(), passedLines)
	if st := k.State(); len(st.Incoming) != 0 || st.DeviceOpen {
		t.Errorf("kernel after stage 2: %d incoming sessions, device open %v", len(st.Incoming), st.DeviceOpen)
	}
}

// TestDeviceFailure makes the kernel fail a retrieve in stage 2: the test
// must be reported FAILED, with the session and token, and the run fail.
func TestDeviceFailure(t *testing.T) {
	t.Parallel() // its own fake, socket and holder; no fd count
	k, sock := serve(t)
	pid := startStage1(t, sock, "simple")
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := k.FailRetrieve("test-session", 0x1A, unix.EIO); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err := run([]string{"-device", sock, "-stage", "2", "-test", "simple"}, &out)
	if err == nil || err.Error() != "1 of 1 tests failed" {
		t.Errorf("stage 2: %v, want 1 of 1 tests failed", err)
	}
	for _, want := range []string{`FAILED simple (luo_kexec_simple): `, `session "test-session" token 0x1a`, "input/output error",
		"kexec-selftests: 0 passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
