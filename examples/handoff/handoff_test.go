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
)

// TestMain lets the test binary be the session holder that -device -stage 1
// starts (a copy of the running program, here the test binary), and the
// program itself when started as handoff (see build).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == programName {
		main()
	}
	hold.Main(os.Args[1:])
	os.Exit(m.Run())
}

// TestInProcess runs the whole story with no flags, twice, and checks the
// narration and that the second run leaves no fd behind (the first may
// open the runtime's poller).
func TestInProcess(t *testing.T) {
	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	before := fdtest.Table()
	out.Reset()
	if err := run(nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if leaked := fdtest.Leaked(before, fdtest.Table()); len(leaked) > 0 {
		t.Errorf("the run left fds open: %v", leaked)
	}
	for _, want := range []string{
		`stage 1: preserved it under token 1`,
		`kexec: the kernel froze the session into a KHO image of `,
		`stage 2: counter 42 (41 + 1)`,
		`stage 2: message "hello from the previous kernel"`,
		`stage 2: finished session "handoff"`,
		`fake kernel: 0 incoming sessions left after 1 live update(s)`,
		`OK: the state survived the live update`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if m := regexp.MustCompile(`KHO image of (\d+) bytes`).FindStringSubmatch(out.String()); m == nil || m[1] == "0" {
		t.Errorf("no image size in the output:\n%s", out.String())
	}
}

// TestTampered changes the preserved memfd after the preserve: stage 2 must
// notice and fail, saying what it found and what it wanted.
func TestTampered(t *testing.T) {
	afterPreserve = func(f *os.File) {
		if _, err := f.WriteAt([]byte(`{"counter":40`), 0); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterPreserve = nil }()
	var out bytes.Buffer
	err := run(nil, &out)
	if err == nil {
		t.Fatalf("run succeeded on a tampered state:\n%s", out.String())
	}
	for _, want := range []string{"differs from what stage 1 preserved", "got counter 40", "want counter 41"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(out.String(), "OK") {
		t.Errorf("output claims success:\n%s", out.String())
	}

	// Not JSON at all.
	afterPreserve = func(f *os.File) { f.WriteAt([]byte("garbage"), 0) }
	err = run(nil, &out)
	if err == nil || !strings.Contains(err.Error(), "not the state stage 1 wrote") {
		t.Errorf("run on garbage: %v", err)
	}
}

// TestUsage checks the command-line mistakes and -h.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-stage", "1"},
		{"-image", "x"},
		{"-image", "x", "-stage", "3"},
		{"-image", "x", "-device", "y", "-stage", "1"},
		{"-bogus"},
		{"extra"},
	} {
		err := run(args, new(bytes.Buffer))
		var ue cli.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("run %q: %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"Usage:", "-image FILE", "-device PATH", "-stage N"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), hold.Flag) {
		t.Errorf("-h shows the hidden flag:\n%s", out.String())
	}
}

// programName is the name under which the test binary is the program.
const programName = "handoff"

// build returns the program in a temporary directory: the test binary,
// which holds every file of package main, under programName (so its
// TestMain runs main), with no go build.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), programName)
	if err := testexec.LinkSelf(bin); err != nil {
		t.Fatal(err)
	}
	return bin
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

// TestTwoProcesses runs the stages as two processes of the built program,
// handing over through an image file, and the failures a user meets.
func TestTwoProcesses(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "image")

	out, errOut, code := runBin(t, bin, "-image", image, "-stage", "1")
	if code != 0 || !strings.Contains(out, "kexec: wrote the image to "+image) {
		t.Fatalf("stage 1: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBin(t, bin, "-image", image, "-stage", "1")
	if code != 1 || !strings.Contains(errOut, "remove it to start over") {
		t.Errorf("stage 1 again: exit %d, want 1 and advice\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBin(t, bin, "-image", image, "-stage", "2")
	if code != 0 || !strings.Contains(out, "stage 2: counter 42 (41 + 1)") ||
		!strings.Contains(out, `stage 2: message "hello from the previous kernel"`) {
		t.Fatalf("stage 2: exit %d\n%s%s", code, out, errOut)
	}

	// Stage 2 without stage 1.
	_, errOut, code = runBin(t, bin, "-image", filepath.Join(dir, "none"), "-stage", "2")
	if code != 1 || !strings.Contains(errOut, "-stage 1 first") {
		t.Errorf("stage 2 without an image: exit %d, want 1 and advice\n%s", code, errOut)
	}

	// Stage 2 after a live update that carried no "handoff" session.
	empty := filepath.Join(dir, "empty")
	k := faketest.New(t, fake.WithImageFile(empty))
	faketest.Kexec(t, k)
	k.Close()
	_, errOut, code = runBin(t, bin, "-image", empty, "-stage", "2")
	if code != 1 || !strings.Contains(errOut, `retrieve session "handoff"`) || !strings.Contains(errOut, "run stage 1") {
		t.Errorf("stage 2 without the session: exit %d, want 1 and advice\n%s", code, errOut)
	}

	_, errOut, code = runBin(t, bin, "-stage", "2")
	if code != 2 || !strings.Contains(errOut, "Run 'handoff -h' for usage.") {
		t.Errorf("usage error: exit %d, want 2\n%s", code, errOut)
	}
}

// TestDevice runs the -device mode against a fake kernel served on a unix
// socket (fake.Kernel.Listen), as the real /dev/liveupdate would be: stage 1
// must leave a detached holder that keeps the session through the kexec.
// The stages run in this process (the holder is a copy of the test binary)
// and as the built program, whose holder must not keep its stdout open.
func TestDevice(t *testing.T) {
	inProcess := func(t *testing.T, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(args, &out)
		return out.String(), err
	}
	bin := build(t)
	built := func(t *testing.T, args ...string) (string, error) {
		out, errOut, code := runBin(t, bin, args...)
		if code != 0 {
			return out, errors.New(errOut)
		}
		return out, nil
	}
	t.Run("in-process", func(t *testing.T) { testDevice(t, inProcess) })
	t.Run("exec", func(t *testing.T) { testDevice(t, built) })
}

func testDevice(t *testing.T, handoff func(t *testing.T, args ...string) (string, error)) {
	k := faketest.New(t)
	sock := filepath.Join(t.TempDir(), "liveupdate")
	stop, err := k.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	out, err := handoff(t, "-device", sock, "-stage", "1")
	if err != nil {
		t.Fatalf("stage 1: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`holder: pid (\d+) holds session "handoff"`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "now kexec") {
		t.Fatalf("stage 1 names no holder:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	defer syscall.Kill(pid, syscall.SIGKILL)

	// Stage 1 closed its copy of the session; the holder's keeps it.
	st := k.State()
	if len(st.Outgoing) != 1 || st.Outgoing[0].Name != "handoff" || len(st.Outgoing[0].Files) != 1 {
		t.Fatalf("outgoing sessions held: %+v", st.Outgoing)
	}
	if st.DeviceOpen {
		t.Error("stage 1 left the device open")
	}
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL) // the kexec ends it on a real machine

	out, err = handoff(t, "-device", sock, "-stage", "2")
	if err != nil {
		t.Fatalf("stage 2: %v\n%s", err, out)
	}
	if !strings.Contains(out, "stage 2: counter 42 (41 + 1)") {
		t.Errorf("stage 2 output:\n%s", out)
	}
	if n := len(k.State().Incoming); n != 0 {
		t.Errorf("%d incoming sessions left", n)
	}

	// Stage 2 again: the session is finished and gone.
	_, err = handoff(t, "-device", sock, "-stage", "2")
	if err == nil || !strings.Contains(err.Error(), "run stage 1") {
		t.Errorf("stage 2 again: %v", err)
	}
}
