//go:build linux

package kexectests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/internal/testexec"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// checkFDs fails the test if it ends with fds open that were not open when
// it started. Call it first, so that its cleanup runs last, after the
// fake kernel's Close.
func checkFDs(t *testing.T) {
	t.Helper()
	fdtest.Check(t, time.Second) // a release may still be finishing on the fake's goroutine
}

// roomForFake makes room for a test's sessions in this process: the fake
// holds its own end of every session fd, so a stress test on the fake
// needs twice the fds the kernel's would.
func roomForFake(t *testing.T, tt Test) {
	t.Helper()
	if err := EnsureNoFileLimit(2*uint64(len(tt.Sessions)) + 2*tt.NoFileLimit + 64); err != nil {
		if errors.Is(err, ErrSkip) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

func closeAll(ss []*liveupdate.Session) {
	for _, s := range ss {
		s.Close()
	}
}

// stage1 runs tt's first stage on k as a test would: it checks the
// detected stage, runs Stage1, closes the device, kexecs and closes the
// old kernel's session fds.
func stage1(t *testing.T, k *fake.Kernel, tt Test) {
	t.Helper()
	dev := faketest.Open(t, k)
	stage, state, err := tt.DetectStage(dev)
	if err != nil || stage != 1 || state != nil {
		t.Fatalf("DetectStage before stage 1: %d, %v, %v; want 1, nil, nil", stage, state, err)
	}
	t0 := time.Now()
	keep, err := tt.Stage1(dev)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(tt.Sessions); len(keep) != want {
		t.Errorf("Stage1 kept %d sessions, want %d", len(keep), want)
	}
	dev.Close()
	t1 := time.Now()
	if err := k.Kexec(); err != nil {
		closeAll(keep)
		t.Fatal(err)
	}
	t2 := time.Now()
	closeAll(keep)
	if d := t2.Sub(t1); d > time.Second {
		t.Logf("Stage1 %v, Kexec %v", t1.Sub(t0).Round(time.Millisecond), d.Round(time.Millisecond))
	}
}

// detect2 opens k's device after the update and detects stage 2.
func detect2(t *testing.T, k *fake.Kernel, tt Test) (*liveupdate.Device, *liveupdate.Session) {
	t.Helper()
	dev := faketest.Open(t, k)
	stage, state, err := tt.DetectStage(dev)
	if err != nil || stage != 2 || state == nil {
		dev.Close()
		t.Fatalf("DetectStage after the update: %d, %v, %v; want 2 and the state session", stage, state, err)
	}
	return dev, state
}

// TestStages runs each test's two stages around a fake kexec in this
// process, and checks the PASSED line, that nothing is left in the kernel
// and that no fd leaks.
func TestStages(t *testing.T) {
	want := map[string]string{
		"simple":          "SIMPLE KEXEC TEST PASSED",
		"multi-session":   "MULTI-SESSION KEXEC TEST PASSED",
		"stress-sessions": "MANY-SESSIONS KEXEC TEST PASSED (2000 sessions)",
		"stress-files":    "MANY-FILES KEXEC TEST PASSED (500 files)",
	}
	for _, tt := range All() {
		t.Run(tt.Name, func(t *testing.T) {
			roomForFake(t, tt)
			checkFDs(t)
			k := faketest.New(t)
			t0 := time.Now()
			stage1(t, k, tt)
			st := k.State()
			if len(st.Incoming) != 0 || len(st.Outgoing) != 0 {
				t.Errorf("before the first open of the new kernel: %d incoming, %d outgoing sessions", len(st.Incoming), len(st.Outgoing))
			}
			t1 := time.Now()
			dev, state := detect2(t, k, tt)
			if n := len(k.State().Incoming); n != 1+len(tt.Sessions) {
				t.Errorf("%d incoming sessions after the update, want %d", n, 1+len(tt.Sessions))
			}
			passed, err := tt.Stage2(dev, state)
			dev.Close()
			if err != nil {
				t.Fatal(err)
			}
			if passed != want[tt.Name] {
				t.Errorf("Stage2 = %q, want %q", passed, want[tt.Name])
			}
			st = k.State()
			if len(st.Incoming) != 0 || len(st.Outgoing) != 0 {
				t.Errorf("after stage 2: incoming %+v, outgoing %+v; want none", st.Incoming, st.Outgoing)
			}
			if st.LiveupdateNum != 1 {
				t.Errorf("liveupdate number %d, want 1", st.LiveupdateNum)
			}
			t.Logf("stage 1 + kexec %v, stage 2 %v", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Run drives both stages as luo_test() does, detecting each.
func TestRun(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("luo_multi_session")
	k := faketest.New(t)
	dev := faketest.Open(t, k)
	stage, keep, passed, err := tt.Run(dev, 0)
	dev.Close()
	if err != nil || stage != 1 || passed != "" || len(keep) != 5 {
		closeAll(keep)
		t.Fatalf("Run in stage 1: %d, %d sessions, %q, %v", stage, len(keep), passed, err)
	}
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	closeAll(keep)
	dev = faketest.Open(t, k)
	defer dev.Close()
	if _, _, _, err := tt.Run(dev, 1); !errors.Is(err, ErrWrongStage) {
		t.Fatalf("Run(1) in stage 2: %v, want ErrWrongStage", err)
	}
	// The mismatch closed (finished) the state session, as the C test's
	// exit does: the system now looks like stage 1 again.
	stage, keep, passed, err = tt.Run(dev, 2)
	if !errors.Is(err, ErrWrongStage) || stage != 1 || keep != nil || passed != "" {
		t.Fatalf("Run(2) after the state session was closed: %d, %v, %q, %v", stage, keep, passed, err)
	}
}

// wantError checks that err is an *Error of the test and stage, with that
// op, session and token, and matching target.
func wantError(t *testing.T, err error, target error, stage int, op, session string, token uint64, hasToken bool) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *Error", err, err)
	}
	if !errors.Is(err, target) {
		t.Errorf("error %v does not match %v", err, target)
	}
	if e.Stage != stage || e.Op != op || e.Session != session || e.HasToken != hasToken || e.Token != token {
		t.Errorf("error %v: stage %d op %q session %q token %#x (%v); want stage %d op %q session %q token %#x (%v)",
			err, e.Stage, e.Op, e.Session, e.Token, e.HasToken, stage, op, session, token, hasToken)
	}
	return e
}

// Stage 1 writes one payload other than stage 2 expects: stage 2 must
// report that file, with what it expected and what it found.
func TestWrongPayload(t *testing.T) {
	for _, tt := range All() {
		if tt.Name == "stress-sessions" {
			continue // no files
		}
		t.Run(tt.Name, func(t *testing.T) {
			roomForFake(t, tt)
			checkFDs(t)
			k := faketest.New(t)
			bad, _ := ByName(tt.Name)
			last := &bad.Sessions[len(bad.Sessions)-1]
			f := &last.Files[len(last.Files)-1]
			orig := f.Data
			f.Data = strings.ToUpper(orig)
			stage1(t, k, bad)

			dev, state := detect2(t, k, tt)
			defer dev.Close()
			passed, err := tt.Stage2(dev, state)
			if passed != "" {
				t.Errorf("Stage2 returned %q with an error", passed)
			}
			e := wantError(t, err, ErrMismatch, 2, "verify", last.Name, f.Token, true)
			if e.Want != orig || e.Got != f.Data {
				t.Errorf("mismatch want %q got %q; want %q, %q", e.Want, e.Got, orig, f.Data)
			}
			for _, s := range []string{fmt.Sprintf("%q", orig), fmt.Sprintf("%q", f.Data), fmt.Sprintf("token %#x", f.Token), last.Name} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
			t.Log(err)
			// Stage2 closed what it retrieved; the state session is gone.
			for _, s := range k.State().Incoming {
				if s.Name == tt.StateSession || s.Retrieved {
					t.Errorf("after the failed stage 2, session %q is left (retrieved %v)", s.Name, s.Retrieved)
				}
			}
		})
	}
}

// A payload overwritten through a shared mapping after it was preserved
// (in-size writes are allowed on a preserved memfd) crosses the update
// overwritten, and stage 2 reports it.
func TestOverwrittenAfterPreserve(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("simple")
	afterPreserve = func(session string, token uint64, f *os.File) {
		if session != "test-session" || token != 0x1A {
			return
		}
		mem, err := unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Error(err)
			return
		}
		copy(mem[len("hello kexec "):], "WORLD")
		unix.Munmap(mem)
	}
	defer func() { afterPreserve = nil }()
	k := faketest.New(t)
	stage1(t, k, tt)
	afterPreserve = nil
	dev, state := detect2(t, k, tt)
	defer dev.Close()
	_, err := tt.Stage2(dev, state)
	e := wantError(t, err, ErrMismatch, 2, "verify", "test-session", 0x1A, true)
	if e.Want != "hello kexec world" || e.Got != "hello kexec WORLD" {
		t.Errorf("want %q got %q", e.Want, e.Got)
	}
	t.Log(err)
}

// A state memfd that holds another stage fails stage 2 before any test
// session is touched.
func TestWrongStateValue(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("simple")
	afterPreserve = func(session string, token uint64, f *os.File) {
		if session == tt.StateSession && token == tt.StateToken {
			if _, err := f.WriteAt([]byte("3\x00"), 0); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { afterPreserve = nil }()
	k := faketest.New(t)
	stage1(t, k, tt)
	afterPreserve = nil
	dev, state := detect2(t, k, tt)
	defer dev.Close()
	_, err := tt.Stage2(dev, state)
	e := wantError(t, err, ErrMismatch, 2, "read stage", tt.StateSession, tt.StateToken, true)
	if e.Want != "2" || e.Got != "3" {
		t.Errorf("want %q got %q", e.Want, e.Got)
	}
	if !strings.Contains(err.Error(), "expected stage 2, but the state file contains 3") {
		t.Errorf("error %q", err)
	}
	in := k.State().Incoming
	if len(in) != 1 || in[0].Name != "test-session" || in[0].Retrieved {
		t.Errorf("incoming after the failure: %+v; want test-session, not retrieved", in)
	}
}

// A session dropped before the kexec is missing in stage 2.
func TestMissingSession(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("multi-session")
	k := faketest.New(t)
	dev := faketest.Open(t, k)
	keep, err := tt.Stage1(dev)
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	keep[3].Close() // multi-test-files-1: dropped with its memfd
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	closeAll(keep)
	dev, state := detect2(t, k, tt)
	defer dev.Close()
	_, err = tt.Stage2(dev, state)
	wantError(t, err, unix.ENOENT, 2, "retrieve session", "multi-test-files-1", 0, false)
	t.Log(err)
}

// Stage 2 on a kernel that never ran stage 1 fails stage detection.
func TestStage2OnFreshKernel(t *testing.T) {
	checkFDs(t)
	for _, tt := range All() {
		k := faketest.New(t)
		dev := faketest.Open(t, k)
		passed, err := tt.Stage2(dev, nil)
		dev.Close()
		e := wantError(t, err, ErrWrongStage, 2, "detect stage", tt.StateSession, 0, false)
		if passed != "" || e.Want != "2" || e.Got != "1" {
			t.Errorf("%s: %q, %v", tt.Name, passed, err)
		}
		if !strings.Contains(err.Error(), "requested stage 2, but the system is in stage 1 (state session MISSING)") {
			t.Errorf("error %q", err)
		}
	}
}

// Stage 1 run again after the update (stage 2 never ran) fails stage
// detection; as the C test's exit does, that closes, so finishes, the
// state session, and the rest stay for someone to retrieve.
func TestStage1Twice(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("simple")
	k := faketest.New(t)
	stage1(t, k, tt)
	dev := faketest.Open(t, k)
	defer dev.Close()
	keep, err := tt.Stage1(dev)
	if keep != nil {
		t.Errorf("Stage1 kept %d sessions on error", len(keep))
		closeAll(keep)
	}
	e := wantError(t, err, ErrWrongStage, 1, "detect stage", tt.StateSession, 0, false)
	if e.Want != "1" || e.Got != "2" || !strings.Contains(err.Error(), "(state session EXISTS)") {
		t.Errorf("error %v", err)
	}
	t.Log(err)
	in := k.State().Incoming
	if len(in) != 1 || in[0].Name != "test-session" {
		t.Errorf("incoming after the failed stage 1: %+v; want only test-session", in)
	}
	if len(k.State().Outgoing) != 0 {
		t.Errorf("the failed stage 1 created sessions: %+v", k.State().Outgoing)
	}
}

// Any answer to the state session's retrieve but a session or ENOENT is an
// error, not a stage: here EINVAL, for a session retrieved already.
func TestDetectStageError(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("simple")
	k := faketest.New(t)
	stage1(t, k, tt)
	dev, state := detect2(t, k, tt)
	defer dev.Close()
	defer state.Close()
	stage, s, err := tt.DetectStage(dev)
	if stage != 0 || s != nil {
		t.Errorf("DetectStage a second time: stage %d, session %v", stage, s)
	}
	wantError(t, err, unix.EINVAL, 0, "detect stage", tt.StateSession, 0, false)
	_, err = tt.Stage2(dev, nil)
	wantError(t, err, unix.EINVAL, 2, "detect stage", tt.StateSession, 0, false)
	t.Log(err)
}

// A session name taken before stage 1 makes it fail, naming the session,
// and leaves nothing behind.
func TestStage1CreateFails(t *testing.T) {
	checkFDs(t)
	tt, _ := ByName("multi-session")
	k := faketest.New(t)
	dev := faketest.Open(t, k)
	defer dev.Close()
	squat, err := dev.CreateSession("multi-test-files-2")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	keep, err := tt.Stage1(dev)
	if keep != nil {
		t.Errorf("Stage1 kept %d sessions on error", len(keep))
	}
	wantError(t, err, unix.EEXIST, 1, "create session", "multi-test-files-2", 0, false)
	if out := k.State().Outgoing; len(out) != 1 || out[0].Name != "multi-test-files-2" {
		t.Errorf("outgoing after the failed stage 1: %+v", out)
	}
}

func TestCatalog(t *testing.T) {
	var names []string
	for _, tt := range All() {
		names = append(names, tt.Name+"="+tt.Program)
		for _, n := range []string{tt.Name, tt.Program} {
			if got, ok := ByName(n); !ok || got.StateSession != tt.StateSession {
				t.Errorf("ByName(%q) = %v, %v", n, got.Name, ok)
			}
		}
		for _, ss := range append([]SessionSpec{{Name: tt.StateSession}}, tt.Sessions...) {
			if err := liveupdate.ValidateName(ss.Name); err != nil {
				t.Errorf("%s: %v", tt.Name, err)
			}
		}
	}
	if got := strings.Join(names, " "); got != "simple=luo_kexec_simple multi-session=luo_multi_session stress-sessions=luo_stress_sessions stress-files=luo_stress_files" {
		t.Errorf("All: %s", got)
	}
	if _, ok := ByName("nope"); ok {
		t.Error("ByName(nope) found a test")
	}
	ss, _ := ByName("stress-sessions")
	if len(ss.Sessions) != 2000 || ss.Sessions[0].Name != "many-test-0" || ss.Sessions[1999].Name != "many-test-1999" ||
		ss.StateSession != "kexec_many_state" || ss.StateToken != 999 || ss.NoFileLimit != 2000 || !ss.OneByOne {
		t.Errorf("stress-sessions: %+v", ss.Sessions[:1])
	}
	sf, _ := ByName("stress-files")
	fs := sf.Sessions[0].Files
	if len(sf.Sessions) != 1 || sf.Sessions[0].Name != "many_files_session" || len(fs) != 500 ||
		fs[0] != (FileSpec{0, "file-data-0"}) || fs[499] != (FileSpec{499, "file-data-499"}) ||
		sf.StateSession != "kexec_many_files_state" || sf.StateToken != 9999 || sf.NoFileLimit != 0 {
		t.Errorf("stress-files: %+v", sf.Sessions[0].Name)
	}
	// Fresh values: changing one changes no other.
	a, _ := ByName("simple")
	a.Sessions[0].Files[0].Data = "x"
	if b, _ := ByName("simple"); b.Sessions[0].Files[0].Data != "hello kexec world" {
		t.Error("ByName returns shared payloads")
	}
}

func TestAtoi(t *testing.T) {
	for in, want := range map[string]int{"2": 2, "2\x00junk": 2, " \t+42x": 42, "-7": -7, "": 0, "x2": 0, "\n3": 3} {
		if got := atoi([]byte(in)); got != want {
			t.Errorf("atoi(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		e    *Error
		want string
	}{
		{&Error{Test: "simple", Stage: 2, Session: "test-session", Token: 0x1a, HasToken: true, Op: "verify", Want: "a", Got: "b", Err: ErrMismatch},
			`kexectests: simple: stage 2: session "test-session" token 0x1a: verify: data mismatch: expected "a", got "b"`},
		{&Error{Test: "simple", Stage: 1, Session: "kexec_simple_state", Op: "detect stage", Want: "1", Got: "2", Err: ErrWrongStage},
			`kexectests: simple: stage 1: session "kexec_simple_state": detect stage: stage mismatch: requested stage 1, but the system is in stage 2 (state session EXISTS)`},
		{&Error{Test: "stress-sessions", Stage: 1, Op: "raise RLIMIT_NOFILE", Err: syscall.EPERM},
			`kexectests: stress-sessions: stage 1: raise RLIMIT_NOFILE: operation not permitted`},
		{&Error{Test: "x", Op: "verify", Want: "a", Got: strings.Repeat("z", 200), Err: ErrMismatch},
			`kexectests: x: verify: data mismatch: expected "a", got "` + strings.Repeat("z", 96) + `"... (200 bytes)`},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	skip := &skipError{"insufficient privileges to set RLIMIT_NOFILE to 2032", unix.EPERM}
	if !errors.Is(skip, ErrSkip) || !errors.Is(skip, unix.EPERM) {
		t.Errorf("%v does not match ErrSkip and EPERM", skip)
	}
}

// Environment of the helper process.
const (
	envStage = "LUO_KEXECTEST_STAGE"
	envName  = "LUO_KEXECTEST_NAME"
	envImage = "LUO_KEXECTEST_IMAGE"
)

// TestTwoProcesses runs each test's stages as two processes, as on a real
// machine: this test binary re-executed for stage 1, which kexecs the fake
// into an image file, then again for stage 2, which boots from it.
func TestTwoProcesses(t *testing.T) {
	// Each test's two processes and image are its own, and the parent
	// counts no fds: the tests run side by side.
	t.Parallel()
	for _, tt := range All() {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			img := filepath.Join(t.TempDir(), "image")
			t0 := time.Now()
			out := helper(t, "1", tt.Name, img)
			if !strings.Contains(out, "STAGE 1 DONE") {
				t.Fatalf("stage 1 output:\n%s", out)
			}
			if _, err := os.Stat(img); err != nil {
				t.Fatalf("stage 1 left no image: %v", err)
			}
			t1 := time.Now()
			out = helper(t, "2", tt.Name, img)
			if want := "--- " + tt.Passed + " ---"; !strings.Contains(out, want) {
				t.Fatalf("stage 2 output lacks %q:\n%s", want, out)
			}
			t.Logf("stage 1 process %v, stage 2 process %v", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		})
	}
}

func helper(t *testing.T, stage, name, img string) string {
	t.Helper()
	args := []string{"-test.run=^TestHelperProcess$", "-test.count=1", "-test.v"}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envStage+"="+stage, envName+"="+name, envImage+"="+img)
	out, err := testexec.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("stage %s process: %v\n%s", stage, err, out)
	}
	return string(out)
}

// TestHelperProcess is stage 1 or stage 2 of TestTwoProcesses, in a
// process of its own; it does nothing when run otherwise.
func TestHelperProcess(t *testing.T) {
	stage := os.Getenv(envStage)
	if stage == "" {
		t.Skip("the helper process of TestTwoProcesses")
	}
	tt, ok := ByName(os.Getenv(envName))
	if !ok {
		t.Fatalf("no test %q", os.Getenv(envName))
	}
	roomForFake(t, tt)
	k := faketest.New(t, fake.WithImageFile(os.Getenv(envImage)))
	dev := faketest.Open(t, k)
	switch stage {
	case "1":
		keep, err := tt.Stage1(dev)
		if err != nil {
			t.Fatal(err)
		}
		dev.Close()
		err = k.Kexec()
		closeAll(keep)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("STAGE 1 DONE: %s, %d sessions handed over\n", tt.Program, len(keep))
	case "2":
		got, state, err := tt.DetectStage(dev)
		if err != nil {
			t.Fatal(err)
		}
		if got != 2 {
			t.Fatalf("detected stage %d after booting from the image, want 2", got)
		}
		passed, err := tt.Stage2(dev, state)
		if err != nil {
			t.Fatal(err)
		}
		if st := k.State(); len(st.Incoming) != 0 || st.LiveupdateNum != 1 {
			t.Fatalf("after stage 2: %d incoming sessions, liveupdate number %d", len(st.Incoming), st.LiveupdateNum)
		}
		fmt.Printf("\n--- %s ---\n", passed)
	default:
		t.Fatalf("%s=%q, want 1 or 2", envStage, stage)
	}
}
