//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// filteredThreads lists this process's threads that run under a seccomp
// filter.
func filteredThreads(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Seccomp_filters:"); ok && strings.TrimSpace(v) != "0" {
				out = append(out, p)
			}
		}
	}
	return out
}

// continueAll lets every call notified on l go on, until l hangs up or
// is closed.
func continueAll(l listener) {
	for {
		fds := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			if fds[0].Revents != 0 {
				return
			}
			continue
		}
		var n seccompNotif
		if l.recv(&n) == nil {
			l.send(&seccompResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
		}
	}
}

// TestFilterStaysInTree starts programs under the filter many times and
// checks that no thread of luoemu keeps it: the thread that installed it
// ends (were it the main thread, it could not, and the listener would
// never hang up when the tree ends, so luoemu would never exit).
func TestFilterStaysInTree(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	prog := filterConfig{}.program()
	for range 20 {
		p, l, err := startFiltered(prog, truePath, []string{"true"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		go continueAll(l) // the loader's opens
		var ws unix.WaitStatus
		if _, err := unix.Wait4(p.Pid, &ws, 0, nil); err != nil {
			t.Fatal(err)
		}
		p.Release()
		// The tree is gone: once the installing thread has ended too,
		// the listener hangs up.
		fds := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
		deadline := time.Now().Add(time.Minute)
		for {
			fds[0].Revents = 0
			unix.Poll(fds, 100)
			if fds[0].Revents&unix.POLLHUP != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the listener never hung up; threads under the filter: %v", filteredThreads(t))
			}
		}
		unix.Close(int(l)) // continueAll ends on POLLHUP first
	}
	if th := filteredThreads(t); len(th) > 0 {
		t.Errorf("threads of luoemu under the filter: %v", th)
	}
}
