//go:build linux

package fake_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate/fake/faketest"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// listenerState reports whether Listen's accepting goroutine is running,
// and whether it is pausing after a failed accept (waiting in a select).
func listenerState() (running, pausing bool) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		// Until it first runs, the goroutine is Listen's go statement's.
		if strings.Contains(g, "fake.(*listener).serve(") || strings.Contains(g, "fake.(*Kernel).Listen.gowrap") {
			return true, strings.HasPrefix(g, "goroutine ") && strings.Contains(g[:strings.Index(g, "\n")], "[select")
		}
	}
	return false, false
}

// waitAccepting waits until Listen's goroutine has started and is in
// accept.
func waitAccepting(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(generous)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "fake.(*listener).serve(") && strings.Contains(g, "Accept4(") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Listen's goroutine is not accepting after %v", generous)
		}
		time.Sleep(time.Millisecond)
	}
}

// fillFDTable lowers this process's fd limit and opens /dev/null until
// no fd is left; the returned function closes them and restores the limit.
func fillFDTable(t *testing.T) (free func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	highest := 0
	for fd := range fdtest.Table() {
		highest = max(highest, fd)
	}
	low := old
	low.Cur = uint64(highest) + 16
	if low.Cur > old.Cur {
		t.Skipf("fd limit %d too low", old.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	freed := false
	free = func() {
		if freed {
			return
		}
		freed = true
		closeFDs(fillers)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(free)
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EMFILE {
			return free
		}
		if err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, fd)
	}
}

// An accept that fails for want of an fd (EMFILE) does not stop Listen:
// the fake pauses, tries again, and answers the connections that waited
// once fds are free.
func TestListenSurvivesEMFILE(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	path := faketest.Listen(t, k)
	early, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if early >= 0 {
			unix.Close(early)
		}
	}()

	waitAccepting(t)
	free := fillFDTable(t)
	// A connection takes no fd on this side; the fake's accept of it, or
	// the next one, fails with EMFILE.
	if err := unix.Connect(early, &unix.SockaddrUnix{Name: path}); err != nil {
		free()
		t.Fatal(err)
	}
	deadline := time.Now().Add(generous)
	for {
		running, pausing := listenerState()
		if !running || pausing {
			t.Logf("after a failed accept the fake's accepting goroutine is running: %v", running)
			break // the accept has failed: the fake has stopped, or pauses
		}
		if time.Now().After(deadline) {
			free()
			t.Fatalf("the fake's accept has not failed after %v with no fd free", generous)
		}
		time.Sleep(time.Millisecond)
	}
	free()
	unix.Close(early) // if the fake opened the device for it, it releases it
	early = -1

	opened := make(chan error, 1)
	go func() {
		d, err := liveupdate.Open(path)
		if err == nil {
			d.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("open after the fds are free again: %v", err)
		}
	case <-time.After(2 * generous): // longer than the dial's own bound
		t.Fatalf("open after the fds are free again has not returned after %v", 2*generous)
	}
}

// Stopping the listener ends its pause too.
func TestListenStopWhilePausing(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	path := filepath.Join(t.TempDir(), "liveupdate")
	stop, err := k.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	waitAccepting(t)
	free := fillFDTable(t)
	defer free()
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(generous)
	for {
		running, pausing := listenerState()
		if !running {
			t.Fatal("the fake stopped accepting after a failed accept")
		}
		if pausing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake's accept has not failed after %v with no fd free", generous)
		}
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(generous):
		t.Fatalf("stop has not returned after %v", generous)
	}
	if running, _ := listenerState(); running {
		t.Fatal("the accepting goroutine runs on after stop")
	}
}
