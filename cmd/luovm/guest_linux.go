//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel command line carries which chain and which boot of it this
// kernel is: luovm.chain=NAME luovm.boot=N.
const (
	cmdlineChain = "luovm.chain="
	cmdlineBoot  = "luovm.boot="
)

// guest is luovm running as the init of a test kernel.
type guest struct {
	results *os.File // the results channel, the second serial port
	chain   chain
	boot    int
	cmdline string

	mu      sync.Mutex
	started map[string]*running // by path, for stop steps
}

// guestMain is main when luovm is PID 1. It never returns: it ends with a
// kexec into the next boot of the chain, or with a restart, which QEMU
// (-no-reboot) takes as the end.
func guestMain() {
	g := &guest{started: map[string]*running{}}
	err := g.run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "luovm guest: %v\n", err)
		g.report("FAIL", bootName(g.chain.name, g.boot), err.Error())
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}

func (g *guest) run() error {
	if err := mountAll(); err != nil {
		return err
	}
	results, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open the results channel: %w", err)
	}
	g.results = results
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	g.cmdline = strings.TrimSpace(string(b))
	name, boot, err := parseCmdline(g.cmdline)
	if err != nil {
		return err
	}
	g.boot = boot
	for _, c := range plan() {
		if c.name == name {
			g.chain = c
		}
	}
	if g.chain.name == "" {
		g.chain.name = name
		return fmt.Errorf("no chain %q in the plan", name)
	}
	if boot >= len(g.chain.boots) {
		return fmt.Errorf("chain %q has %d boots, not %d", name, len(g.chain.boots), boot+1)
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	g.line("boot %s %d %s", name, boot, unix.ByteSliceToString(uts.Release[:]))
	if _, err := startHolder(guestHold); err != nil {
		return err
	}
	for _, s := range g.chain.boots[boot].steps {
		g.runStep(s)
	}
	if boot+1 < len(g.chain.boots) {
		// The next kernel: the same image, the same command line but
		// the boot number.
		if err := g.kexec(); err != nil {
			return fmt.Errorf("kexec into boot %d: %w", boot+1, err)
		}
		return nil // not reached
	}
	g.line("done %s %d", name, boot)
	return nil
}

// parseCmdline returns the chain and boot the command line names.
func parseCmdline(cmdline string) (chain string, boot int, err error) {
	boot = -1
	for _, f := range strings.Fields(cmdline) {
		switch {
		case strings.HasPrefix(f, cmdlineChain):
			chain = strings.TrimPrefix(f, cmdlineChain)
		case strings.HasPrefix(f, cmdlineBoot):
			boot, err = strconv.Atoi(strings.TrimPrefix(f, cmdlineBoot))
			if err != nil || boot < 0 {
				return "", 0, fmt.Errorf("bad %s in the command line %q", f, cmdline)
			}
		}
	}
	if chain == "" || boot < 0 {
		return "", 0, fmt.Errorf("the command line %q names no %sNAME and %sN", cmdline, cmdlineChain, cmdlineBoot)
	}
	return chain, boot, nil
}

// nextCmdline returns cmdline with the boot number n.
func nextCmdline(cmdline string, n int) string {
	f := strings.Fields(cmdline)
	for i := range f {
		if strings.HasPrefix(f[i], cmdlineBoot) {
			f[i] = cmdlineBoot + strconv.Itoa(n)
		}
	}
	return strings.Join(f, " ")
}

// mountAll mounts what the tests need.
func mountAll() error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			if m.fs == "debugfs" {
				continue // optional
			}
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dir, err)
		}
	}
	return nil
}

// line writes one line to the results channel.
func (g *guest) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	s = strings.ReplaceAll(s, "\n", " ")
	fmt.Fprintf(g.results, "%s%s\n", resultPrefix, s)
	fmt.Fprintf(os.Stdout, "%s%s\n", resultPrefix, s)
}

// report writes one result.
func (g *guest) report(status, name, detail string) {
	if g.results == nil {
		return
	}
	name = strings.Join(strings.Fields(name), "_")
	if detail != "" {
		g.line("result %s %s %s", status, name, detail)
		return
	}
	g.line("result %s %s", status, name)
}

// runStep runs s and reports its results.
func (g *guest) runStep(s step) {
	path := filepath.Join(guestDir, s.path)
	if s.kind != inProcess && s.kind != inProcessResults && s.kind != stop {
		if _, err := os.Stat(path); err != nil {
			if s.optional {
				g.report("FAIL", s.result, "not in the image (the kernel's selftests were not built): "+err.Error())
			} else {
				g.report("FAIL", s.result, err.Error())
			}
			return
		}
	}
	fmt.Printf("\n==== luovm: %s (%s %s)\n", s.result, s.path, strings.Join(s.args, " "))
	switch s.kind {
	case inProcessResults:
		s.fnr(g.report)
	case inProcess:
		if err := s.fn(); err != nil {
			g.report("FAIL", s.result, err.Error())
			return
		}
		g.report("PASS", s.result, "")
	case start:
		g.startStep(s, path)
	case stop:
		g.stopStep(s, path)
	default:
		g.runProgram(s, path)
	}
}

// command returns the command of step s.
func command(s step, path string) *exec.Cmd {
	cmd := exec.Command(path, s.args...)
	cmd.Dir = "/tmp"
	cmd.Env = append([]string{"PATH=" + guestDir + "/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp"}, s.env...)
	return cmd
}

// kselftestSkip is the exit status of a kernel selftest that skipped
// (KSFT_SKIP).
const kselftestSkip = 4

// runProgram runs a goTest, kselftest or program step to its end.
func (g *guest) runProgram(s step, path string) {
	cmd := command(s, path)
	var out bytes.Buffer
	w := io.MultiWriter(os.Stdout, &out)
	cmd.Stdout, cmd.Stderr = w, w
	t0 := time.Now()
	err := cmd.Run()
	fmt.Printf("==== luovm: %s ended after %v: %v\n", s.result, time.Since(t0).Round(time.Millisecond), err)
	var rs []result
	switch s.kind {
	case goTest:
		rs = parseGoTest(out.Bytes(), s.result)
	case kselftest:
		rs = parseTAP(out.Bytes(), s.result)
	}
	failed := false
	for _, r := range rs {
		g.report(r.status, r.name, r.detail)
		failed = failed || r.status == "FAIL"
	}
	var exit *exec.ExitError
	switch {
	case len(rs) == 0 && s.kind == kselftest && errors.As(err, &exit) && exit.ExitCode() == kselftestSkip:
		g.report("SKIP", s.result, exitDetail(err, out.Bytes()))
	case len(rs) == 0 && err == nil:
		g.report("PASS", s.result, "")
	case len(rs) == 0:
		g.report("FAIL", s.result, exitDetail(err, out.Bytes()))
	case err != nil && !failed:
		// The program failed without saying which test did.
		g.report("FAIL", s.result, exitDetail(err, out.Bytes()))
	}
}

// exitDetail says how a program ended, with its last line of output.
func exitDetail(err error, out []byte) string {
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	if len(last) > 200 {
		last = last[:200]
	}
	return fmt.Sprintf("%v; last output: %q", err, last)
}

// startStep starts a background command and waits for its ready path.
func (g *guest) startStep(s step, path string) {
	cmd := command(s, path)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Start(); err != nil {
		g.report("FAIL", s.result, err.Error())
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(time.Minute)
	for {
		if _, err := os.Stat(s.ready); err == nil {
			break
		}
		select {
		case err := <-exited:
			g.report("FAIL", s.result, fmt.Sprintf("exited before %s appeared: %v", s.ready, err))
			return
		case <-deadline:
			cmd.Process.Kill()
			g.report("FAIL", s.result, s.ready+" did not appear within a minute")
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	g.mu.Lock()
	g.started[s.path] = &running{cmd: cmd, exited: exited}
	g.mu.Unlock()
	g.report("PASS", s.result, "")
}

// running is a command a start step started.
type running struct {
	cmd    *exec.Cmd
	exited chan error
}

// stopStep stops the command the start step of the same path started.
func (g *guest) stopStep(s step, path string) {
	g.mu.Lock()
	r := g.started[s.path]
	delete(g.started, s.path)
	g.mu.Unlock()
	if r == nil {
		g.report("FAIL", s.result, "no "+s.path+" was started in this boot")
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.exited:
		if err != nil {
			g.report("FAIL", s.result, "after SIGTERM: "+err.Error())
			return
		}
		g.report("PASS", s.result, "")
	case <-time.After(time.Minute):
		r.cmd.Process.Kill()
		g.report("FAIL", s.result, "still running a minute after SIGTERM")
	}
}
