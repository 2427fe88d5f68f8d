//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// What a program pays under luoemu, each figure beside a baseline measured
// in the same round of the same benchmark:
//
//	go test -run '^$' -bench . -count 5 ./cmd/luoemu/
//
// The programs are the loop helper (loopMain), the test binary run as a
// child, directly or under the luoemu binary. The child times its own loop
// (time.Now around it, after a warm-up), so process start, luoemu's setup
// and the helper's opens are not in the figures; the child's time is
// reported as ns/op, and a baseline's (fake, plain, none) as
// BASELINE-ns/op beside the ratio x-BASELINE.

// loopHelper is the name of the loop helper in testHelpers.
const loopHelper = "bench-loop"

func init() { testHelpers[loopHelper] = loopMain }

// loopWarmup is how many iterations the helper runs before the timed loop.
const loopWarmup = 100

// benchSessionName is the session the ioctl loops ask the name of.
const benchSessionName = "bench"

// loopMain is the loop helper: KIND N [PATH]. It sets up (opens a file,
// the device, a session), runs loopWarmup iterations, then N timed ones,
// and prints the loop's time in ns and its seccomp mode
// (/proc/self/status: 0 none, 2 filter) as "NS SECCOMP". Kinds:
//
//	getpid             getpid(2)
//	write              write(2) of one byte to /dev/null
//	ioctl-raw PATH     LIVEUPDATE_SESSION_GET_NAME by ioctl(2) on a session
//	                   created by ioctl(2) on the device opened at PATH
//	ioctl-binding PATH the same through package liveupdate
//	                   (Session.RawIoctl), the device at PATH
func loopMain(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-loop KIND N [PATH]")
		return 2
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "bench-loop: bad count %q\n", args[1])
		return 2
	}
	var loop func(n int) (time.Duration, error)
	switch kind, rest := args[0], args[2:]; {
	case kind == "getpid" && len(rest) == 0:
		loop = func(n int) (time.Duration, error) { return getpidLoop(n), nil }
	case kind == "write" && len(rest) == 0:
		fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-loop:", err)
			return 1
		}
		defer unix.Close(fd)
		loop = func(n int) (time.Duration, error) { return writeLoop(fd, n) }
	case kind == "ioctl-raw" && len(rest) == 1:
		dev, sess, err := rawSession(rest[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-loop:", err)
			return 1
		}
		defer unix.Close(dev)
		defer unix.Close(sess)
		loop = func(n int) (time.Duration, error) { return rawGetNameLoop(sess, n) }
	case kind == "ioctl-binding" && len(rest) == 1:
		d, err := liveupdate.Open(rest[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-loop:", err)
			return 1
		}
		defer d.Close()
		s, err := d.CreateSession(benchSessionName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-loop:", err)
			return 1
		}
		defer s.Close()
		loop = func(n int) (time.Duration, error) { return bindingGetNameLoop(s, n) }
	default:
		fmt.Fprintf(os.Stderr, "bench-loop: bad arguments %q\n", args)
		return 2
	}
	if _, err := loop(min(n, loopWarmup)); err != nil {
		fmt.Fprintln(os.Stderr, "bench-loop:", err)
		return 1
	}
	d, err := loop(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-loop:", err)
		return 1
	}
	mode, err := seccompMode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-loop:", err)
		return 1
	}
	fmt.Println(d.Nanoseconds(), mode)
	return 0
}

// getpidLoop times n getpid(2) calls, a system call no filter of luoemu's
// sends it.
func getpidLoop(n int) time.Duration {
	start := time.Now()
	for range n {
		unix.Getpid()
	}
	return time.Since(start)
}

// writeLoop times n one-byte write(2) calls on fd.
func writeLoop(fd, n int) (time.Duration, error) {
	var c [1]byte
	start := time.Now()
	for range n {
		r, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&c[0])), 1)
		if e != 0 || r != 1 {
			return 0, fmt.Errorf("write: %d, %v", r, e)
		}
	}
	return time.Since(start), nil
}

// rawSession opens the device at path and creates the session
// benchSessionName on it, by open(2) and ioctl(2) as a C program does.
func rawSession(path string) (dev, sess int, err error) {
	dev, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("open %s: %w", path, err)
	}
	a := liveupdate.CreateSessionArgs{Size: liveupdate.SizeofCreateSession}
	liveupdate.PutName(&a.Name, benchSessionName)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(dev), uintptr(liveupdate.CmdCreateSession.Request()), uintptr(unsafe.Pointer(&a)))
	if e != 0 {
		unix.Close(dev)
		return -1, -1, fmt.Errorf("LIVEUPDATE_IOCTL_CREATE_SESSION: %w", e)
	}
	return dev, int(a.FD), nil
}

// rawGetNameLoop times n LIVEUPDATE_SESSION_GET_NAME ioctl(2) calls on
// the session fd and checks the last reply.
func rawGetNameLoop(fd, n int) (time.Duration, error) {
	a := liveupdate.GetNameArgs{Size: liveupdate.SizeofGetName}
	req := uintptr(liveupdate.CmdGetName.Request())
	start := time.Now()
	for range n {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&a))); e != 0 {
			return 0, fmt.Errorf("LIVEUPDATE_SESSION_GET_NAME: %w", e)
		}
	}
	d := time.Since(start)
	return d, checkName(n, &a.Name)
}

// bindingGetNameLoop is rawGetNameLoop through Session.RawIoctl.
func bindingGetNameLoop(s *liveupdate.Session, n int) (time.Duration, error) {
	var arg [liveupdate.SizeofGetName]byte
	native.PutUint32(arg[:], liveupdate.SizeofGetName)
	req := liveupdate.CmdGetName.Request()
	start := time.Now()
	for range n {
		if err := s.RawIoctl(req, arg[:]); err != nil {
			return 0, fmt.Errorf("LIVEUPDATE_SESSION_GET_NAME: %w", err)
		}
	}
	d := time.Since(start)
	return d, checkName(n, (*[liveupdate.SessionNameLen]byte)(arg[8:]))
}

// checkName checks that a GET_NAME reply names the benchmark's session,
// after n > 0 requests.
func checkName(n int, b *[liveupdate.SessionNameLen]byte) error {
	if n == 0 {
		return nil
	}
	if name, err := liveupdate.NameFromBytes(b); err != nil || name != benchSessionName {
		return fmt.Errorf("GET_NAME answered %q (%v), want %q", name, err, benchSessionName)
	}
	return nil
}

// seccompMode is the Seccomp field of /proc/self/status: the main
// thread's.
func seccompMode() (string, error) { return statusSeccomp("/proc/self/status") }

// threadSeccompMode is the calling thread's seccomp mode.
func threadSeccompMode() (string, error) { return statusSeccomp("/proc/thread-self/status") }

// statusSeccomp reads the Seccomp field of a task's status file.
func statusSeccomp(path string) (string, error) {
	st, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no Seccomp line in %s", path)
}

// plain says to run the loop helper as it is, not under luoemu.
var plain []string

// underLuoemu says to run the loop helper under luoemu with its defaults.
var underLuoemu = []string{}

// runLoop runs the loop helper for n iterations of kind, under luoemu with
// flags, or directly when flags is nil, and returns the time its loop took
// as the helper measured it. It checks that the helper ran under a seccomp
// filter exactly when luoemu ran it.
func runLoop(b testing.TB, flags []string, kind string, n int, args ...string) time.Duration {
	b.Helper()
	argv := helperCommand(b, loopHelper, append([]string{kind, strconv.Itoa(n)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	wantMode := "0"
	if flags != nil {
		cmd = luoemu(flags, argv...)
		wantMode = "2"
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %v: %v\n%s", kind, flags, err, stderr.Bytes())
	}
	var ns int64
	var mode string
	if _, err := fmt.Sscan(stdout.String(), &ns, &mode); err != nil {
		b.Fatalf("%s %v: output %q: %v", kind, flags, stdout.Bytes(), err)
	}
	if mode != wantMode {
		// Run by luoemu, it must be under its filter; run plain, under
		// none (a filter of the machine's would be in both).
		b.Fatalf("%s %v: the helper ran in seccomp mode %s, want %s", kind, flags, mode, wantMode)
	}
	return time.Duration(ns)
}

// report reports d as the time of b.N iterations, and base, the baseline's
// time for as many in the same round, beside it with their ratio.
func report(b *testing.B, d, base time.Duration, baseName string) {
	n := float64(b.N)
	b.ReportMetric(float64(d.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/n, baseName+"-ns/op")
	if base > 0 {
		b.ReportMetric(float64(d)/float64(base), "x-"+baseName)
	}
}

// BenchmarkIoctl measures LIVEUPDATE_SESSION_GET_NAME, a request that
// changes no state, three ways: on a fake in this process through package
// liveupdate (fake), through the binding from a child process on a fake's
// socket in this one (fakewire: the transport's cost), and by ioctl(2)
// from a child under luoemu (luoemu: seccomp notification, the fd and the
// argument read from the task, the fake's answer written back). fakewire
// and luoemu each time the in-process fake for as many requests in the
// same round, and report the ratio to it as x-fake.
func BenchmarkIoctl(b *testing.B) {
	k, err := fake.New()
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	d, err := k.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	s, err := d.CreateSession(benchSessionName)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	inProcess := func(b *testing.B, n int) time.Duration {
		t, err := bindingGetNameLoop(s, n)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}

	b.Run("fake", func(b *testing.B) {
		inProcess(b, min(b.N, loopWarmup))
		b.ResetTimer()
		inProcess(b, b.N)
	})
	b.Run("fakewire", func(b *testing.B) {
		// A fake of its own: the device admits one opener at a time,
		// and the child of the round before may not have been
		// released yet.
		kw, err := fake.New()
		if err != nil {
			b.Fatal(err)
		}
		defer kw.Close()
		sock := filepath.Join(b.TempDir(), "liveupdate")
		stop, err := kw.Listen(sock)
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
		base := inProcess(b, b.N)
		report(b, runLoop(b, plain, "ioctl-binding", b.N, sock), base, "fake")
	})
	b.Run("luoemu", func(b *testing.B) {
		base := inProcess(b, b.N)
		report(b, runLoop(b, underLuoemu, "ioctl-raw", b.N, liveupdate.DefaultPath), base, "fake")
	})
}

// BenchmarkGetpid measures a system call luoemu does not serve, getpid(2),
// run by the same binary without luoemu (plain) and under it (luoemu),
// which also runs the plain child for as many calls in the same round and
// reports the ratio as x-plain. The filter lets the call run without
// evaluating it (the kernel's action cache); what is left is the kernel's
// seccomp entry work (see BenchmarkFilter).
func BenchmarkGetpid(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		b.ReportMetric(float64(runLoop(b, plain, "getpid", b.N).Nanoseconds())/float64(b.N), "ns/op")
	})
	b.Run("luoemu", func(b *testing.B) {
		base := runLoop(b, plain, "getpid", b.N)
		report(b, runLoop(b, underLuoemu, "getpid", b.N), base, "plain")
	})
}

// BenchmarkWrite measures write(2) of one byte to /dev/null without
// luoemu (plain), under luoemu -freeze=false (not sent to luoemu) and
// under luoemu's default -freeze, where every write is a seccomp
// notification that luoemu answers with "continue". The luoemu ones also
// run the plain child for as many writes in the same round and report the
// ratio as x-plain.
func BenchmarkWrite(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		b.ReportMetric(float64(runLoop(b, plain, "write", b.N).Nanoseconds())/float64(b.N), "ns/op")
	})
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"luoemu-nofreeze", []string{"-freeze=false"}},
		{"luoemu", underLuoemu},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := runLoop(b, plain, "write", b.N)
			report(b, runLoop(b, c.flags, "write", b.N), base, "plain")
		})
	}
}

// BenchmarkFilter measures getpid(2) on a thread of this process under
// seccomp filters, to show what the kernel's action cache saves: none (no
// filter), allow-all (a filter of one instruction, RET_ALLOW, which the
// cache always covers), luoemu (luoemu's filter with its default -freeze)
// and uncached (luoemu's filter behind a load of an argument, which keeps
// the kernel from caching any system call, so the filter runs on every
// call). Each filtered one also times the thread without a filter for as
// many calls in the same round, and reports the ratio as x-none.
//
// The filter is installed as luoemu installs it (installFilter: with a
// listener), on a locked thread that ends with its goroutine; an emulator
// with no fake answers whatever it notifies (a write of the runtime's)
// by letting it run.
func BenchmarkFilter(b *testing.B) {
	luoemuProg := filterConfig{freeze: true}.program()
	uncached := append([]unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: dataArgLow(0)}}, luoemuProg...)
	b.Run("none", func(b *testing.B) {
		b.ReportMetric(float64(filteredGetpid(b, nil, 0, b.N).Nanoseconds())/float64(b.N), "ns/op")
	})
	for _, c := range []struct {
		name  string
		prog  []unix.SockFilter
		flags uintptr
	}{
		{"allow-all", []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}, 0},
		{"luoemu", luoemuProg, 0},
		{"luoemu-specallow", luoemuProg, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"uncached", uncached, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := filteredGetpid(b, nil, 0, b.N)
			report(b, filteredGetpid(b, c.prog, c.flags, b.N), base, "none")
		})
	}
}

// filteredGetpid times n getpid(2) calls on a new thread under prog (none
// when nil), installed as installFilter does or, with flags, with the
// listener and those flags. The thread is locked to its goroutine and ends
// with it, so the filter never reaches another goroutine: the runtime
// starts no thread from a locked one, nor runs one on the main thread
// (seccomp_linux.go's init).
func filteredGetpid(b testing.TB, prog []unix.SockFilter, flags uintptr, n int) time.Duration {
	b.Helper()
	type result struct {
		d    time.Duration
		mode string
		err  error
	}
	ch := make(chan result, 1)
	var served chan error
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine.
		if prog != nil {
			var l listener
			var err error
			if flags == 0 {
				l, err = installFilter(prog)
			} else {
				l, err = installFilterFlags(prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|flags)
			}
			if err != nil {
				ch <- result{err: err}
				return
			}
			e := &emulator{l: l}
			served = make(chan error, 1)
			go func() {
				err := e.serve()
				unix.Close(int(l))
				served <- err
			}()
		}
		getpidLoop(min(n, loopWarmup))
		d := getpidLoop(n)
		mode, err := threadSeccompMode()
		ch <- result{d: d, mode: mode, err: err}
	}()
	r := <-ch
	if r.err != nil {
		b.Skipf("seccomp filter: %v", r.err)
	}
	if want := map[bool]string{false: "0", true: "2"}[prog != nil]; r.mode != want {
		b.Fatalf("the loop's thread ran in seccomp mode %s, want %s", r.mode, want)
	}
	if served != nil {
		// The listener hangs up when the thread has gone.
		if err := <-served; err != nil {
			b.Fatal(err)
		}
	}
	return r.d
}

// installFilterFlags installs prog on the calling thread with flags, which
// must ask for a listener. The caller has CAP_SYS_ADMIN or no_new_privs.
func installFilterFlags(prog []unix.SockFilter, flags uintptr) (listener, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, e)
	}
	return listener(fd), nil
}

// The loop helper does what the benchmarks time: each kind answers, under
// luoemu and without it, and runs under a filter exactly when luoemu runs
// it (runLoop checks the seccomp mode); the ioctl loops check the session's
// name in the reply.
func TestBenchLoops(t *testing.T) {
	for _, c := range []struct {
		flags []string
		kind  string
	}{
		{plain, "getpid"},
		{underLuoemu, "getpid"},
		{plain, "write"},
		{underLuoemu, "write"},
		{[]string{"-freeze=false"}, "write"},
	} {
		runLoop(t, c.flags, c.kind, 3)
	}
	runLoop(t, underLuoemu, "ioctl-raw", 3, liveupdate.DefaultPath)

	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sock := filepath.Join(t.TempDir(), "liveupdate")
	stop, err := k.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	runLoop(t, plain, "ioctl-binding", 3, sock)
}

// Without luoemu the raw loop finds no device: what answers it in
// TestBenchLoops is luoemu. (The machine's own /dev/liveupdate, if it has
// one, would answer it too.)
func TestBenchLoopNeedsLuoemu(t *testing.T) {
	if _, err := os.Stat(liveupdate.DefaultPath); err == nil {
		t.Skipf("this machine has %s", liveupdate.DefaultPath)
	}
	argv := helperCommand(t, loopHelper, "ioctl-raw", "3", liveupdate.DefaultPath)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("no such file")) {
		t.Fatalf("ioctl-raw without luoemu: %v\n%s", err, out)
	}
}

// A filter on a locked thread of the test process, as BenchmarkFilter
// installs it, is on that thread for the loop (filteredGetpid checks) and
// on no thread of the process afterwards; the listener hangs up when the
// thread ends, or filteredGetpid would not return.
func TestFilteredGetpid(t *testing.T) {
	filteredGetpid(t, filterConfig{freeze: true}.program(), 0, 3)
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks: %v", err)
	}
	for _, st := range tasks {
		mode, err := statusSeccomp(st)
		if err != nil {
			continue // the thread has gone
		}
		if mode != "0" {
			t.Errorf("%s: seccomp mode %s after filteredGetpid, want 0", st, mode)
		}
	}
}
