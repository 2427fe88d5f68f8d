//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The program tree is every process descended from the program luoemu
// started. luoemu is a child subreaper, so a process of the tree whose
// parent exits (a daemon that forks and lets its parent exit, as the
// kernel's two-stage selftests do) becomes luoemu's child instead of
// init's: the tree is then exactly luoemu's descendants.

// becomeSubreaper makes luoemu the reaper of its tree's orphans.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// descendants lists every descendant of pid, from /proc's children
// files of each of its threads.
func descendants(pid int) []int {
	var out []int
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(f)
				if err == nil && !seen[c] {
					seen[c] = true
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// killTree kills every descendant of luoemu, repeating until none is
// left to find: a process forking while the walk runs is found on the
// next round, since its parent, killed, forks no more.
func killTree() {
	self := os.Getpid()
	for range 100 {
		ds := descendants(self)
		if len(ds) == 0 {
			return
		}
		for _, p := range ds {
			unix.Kill(p, unix.SIGKILL)
		}
	}
}

// waitTree reaps the tree until it is empty and returns the wait status
// of root, the program luoemu started.
func waitTree(root int) unix.WaitStatus {
	var rootStatus unix.WaitStatus
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: the tree is gone
			return rootStatus
		}
		if pid == root {
			rootStatus = ws
		}
	}
}

// exitCode is the shell's exit code for a wait status.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return 1
	}
}
