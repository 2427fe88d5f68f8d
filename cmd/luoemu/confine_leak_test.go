//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	testHelpers["leakchild"] = leakChildHelper
	testHelpers["leakparent"] = leakParentHelper
}

// leakChildHelper issues requests on the device its parent passed as fd
// 3 (the device is open once at a time: EBUSY), in a loop, args[1] times
// (0: until killed): it creates session "leak-<args[0]>", preserves a new
// memfd in it, names it and closes both. It prints "looping" after the
// first round.
func leakChildHelper(args []string) int {
	n, _ := strconv.Atoi(args[1])
	const dev = 3
	for k := 1; n == 0 || k <= n; k++ {
		sess, err := createSession(dev, "leak-"+args[0])
		// The fake releases a closed session when it sees the hang-up,
		// which may come after the next create: the kernel's close is
		// synchronous. Wait for it here.
		for try := 0; errors.Is(err, unix.EEXIST) && try < 100000; try++ {
			runtime.Gosched()
			sess, err = createSession(dev, "leak-"+args[0])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		mfd, err := unix.MemfdCreate("leak", 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		unix.Write(mfd, []byte("data"))
		if err := preserveFD(sess, mfd, uint64(k)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		if _, err := sessionName(sess); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		unix.Close(mfd)
		unix.Close(sess)
		if k == 1 {
			fmt.Println("looping")
		}
	}
	return 0
}

// leakParentHelper, in the tree, takes commands on stdin, one a line, and
// answers each with a line:
//
//	warm          one child runs 3 rounds and exits: "warm done"
//	kill R N      R times: N children loop, each is SIGKILLed once it has
//	              done a round: "killed R*N"
//	create N      sessions leak-0 to leak-N-1 at once, then closed:
//	              "created N", or "create failed: ERRNO"
//	hold NAME     creates session NAME and keeps it: "held"
//	release       closes the held sessions: "released"
func leakParentHelper([]string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Println("parent:", err)
		return 1
	}
	dev, err := unix.Open("/dev/liveupdate", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("parent:", err)
		return 1
	}
	devFile := os.NewFile(uintptr(dev), "/dev/liveupdate")
	child := func(i, n int) (*exec.Cmd, *bufio.Reader, error) {
		c := exec.Command(self, strconv.Itoa(i), strconv.Itoa(n))
		c.Env = append(os.Environ(), helperEnv+"=leakchild")
		c.ExtraFiles = []*os.File{devFile}
		out, err := c.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			return nil, nil, err
		}
		return c, bufio.NewReader(out), nil
	}
	var held []int
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "warm":
			c, r, err := child(0, 3)
			if err != nil {
				fmt.Println("parent:", err)
				return 1
			}
			io.Copy(io.Discard, r)
			if err := c.Wait(); err != nil {
				fmt.Println("parent: warm child:", err)
				return 1
			}
			fmt.Println("warm done")
		case "kill":
			rounds, _ := strconv.Atoi(f[1])
			n, _ := strconv.Atoi(f[2])
			killed := 0
			for range rounds {
				var cs []*exec.Cmd
				for i := range n {
					c, r, err := child(i, 0)
					if err != nil {
						fmt.Println("parent:", err)
						return 1
					}
					if l, err := r.ReadString('\n'); l != "looping\n" {
						fmt.Printf("parent: child %d said %q, %v\n", i, l, err)
						return 1
					}
					cs = append(cs, c)
				}
				for _, c := range cs {
					c.Process.Signal(syscall.SIGKILL)
				}
				for _, c := range cs {
					c.Wait()
					if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
						fmt.Printf("parent: child ended %v, not by SIGKILL\n", c.ProcessState)
						return 1
					}
					killed++
				}
			}
			fmt.Printf("killed %d\n", killed)
		case "create":
			n, _ := strconv.Atoi(f[1])
			var ss []int
			var cerr error
			for i := range n {
				s, err := createSession(dev, "leak-"+strconv.Itoa(i))
				if err != nil {
					cerr = err
					break
				}
				ss = append(ss, s)
			}
			for _, s := range ss {
				unix.Close(s)
			}
			if cerr != nil {
				fmt.Printf("create failed: %s\n", errnoName(unwrapErrno(cerr)))
			} else {
				fmt.Printf("created %d\n", n)
			}
		case "hold":
			s, err := createSession(dev, f[1])
			if err != nil {
				fmt.Println("parent:", err)
				return 1
			}
			held = append(held, s)
			fmt.Println("held")
		case "release":
			for _, s := range held {
				unix.Close(s)
			}
			held = nil
			fmt.Println("released")
		default:
			fmt.Printf("parent: unknown command %q\n", f[0])
			return 1
		}
	}
	return 0
}

// openFDs counts the fds open in process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestConfineNoLeak kills programs of the tree with SIGKILL while they
// issue requests, many times, and shows that luoemu keeps nothing of
// theirs: its open fds come back to their count before, and the fake
// keeps none of their sessions (their names can be created again).
func TestConfineNoLeak(t *testing.T) {
	t.Parallel() // it counts the fds of its own luoemu, not of this process
	const rounds, perRound = 5, 8
	cmd := luoemu(nil, helperCommand(t, "leakparent")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out safeBuffer
	lines := startBackground(t, cmd, &out)
	say := func(command, want string) {
		t.Helper()
		if _, err := fmt.Fprintln(stdin, command); err != nil {
			t.Fatal(err)
		}
		if l := waitLine(t, lines, want, &out); !strings.HasPrefix(l, want) {
			t.Fatalf("%s: %q, want %q", command, l, want)
		}
	}
	luoemuPID := cmd.Process.Pid
	say("warm", "warm done")
	before := openFDs(t, luoemuPID)
	settled := func() bool { return openFDs(t, luoemuPID) == before }
	// The checks below can fail: a session the tree keeps is seen in
	// luoemu's fds, and its name cannot be created again.
	say("hold leak-3", "held")
	if !poll(func() bool { return openFDs(t, luoemuPID) > before }) {
		t.Fatalf("a held session is not among luoemu's fds (%d before)", before)
	}
	say(fmt.Sprintf("create %d", perRound), "create failed: EEXIST")
	say("release", "released")
	if !poll(settled) {
		t.Fatalf("luoemu has %d fds open after a release, %d before", openFDs(t, luoemuPID), before)
	}
	say(fmt.Sprintf("kill %d %d", rounds, perRound), fmt.Sprintf("killed %d", rounds*perRound))
	if !poll(settled) {
		t.Errorf("luoemu has %d fds open after the kills, %d before", openFDs(t, luoemuPID), before)
	}
	say(fmt.Sprintf("create %d", perRound), fmt.Sprintf("created %d", perRound))
	if !poll(settled) {
		t.Errorf("luoemu has %d fds open after the creates, %d before", openFDs(t, luoemuPID), before)
	}
	stdin.Close()
	if code := waitExit(t, cmd, lines); code != 0 {
		t.Fatalf("luoemu exited %d:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "parent:") || strings.Contains(out.String(), "child:") {
		t.Errorf("a helper failed:\n%s", out.String())
	}
}
