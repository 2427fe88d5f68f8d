//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vmConfig is what every VM of a run boots.
type vmConfig struct {
	kernel, initrd string
	dir            string // where each chain's console and results go
	accel, memory  string
}

// bootCmdline is the kernel command line of boot 0 of chain name; the
// kexecs pass it on. no_timer_check skips x86's check that the IO-APIC
// timer ticks within a few loops, which a TCG guest on a loaded host can
// miss ("IO-APIC + timer doesn't work!": a panic before the boot runs).
func bootCmdline(name string) string {
	return "console=ttyS0 liveupdate=on panic=-1 no_timer_check " + cmdlineChain + name + " " + cmdlineBoot + "0"
}

// runChains runs the chains, jobs at a time, and returns their results
// in the order of the chains.
func runChains(ctx context.Context, chains []chain, cfg vmConfig, jobs int, log io.Writer) []result {
	out := make([][]result, len(chains))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for i, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			rs := runChain(ctx, c, cfg)
			logMu.Lock()
			fmt.Fprintf(log, "luovm: chain %s: %d boots, %v\n", c.name, len(c.boots), time.Since(t0).Round(100*time.Millisecond))
			logMu.Unlock()
			out[i] = rs
		}()
	}
	wg.Wait()
	var all []result
	for _, rs := range out {
		all = append(all, rs...)
	}
	return all
}

// runChain boots chain c in QEMU and returns its results, with a failure
// for every boot that did not report as planned.
func runChain(ctx context.Context, c chain, cfg vmConfig) []result {
	console := filepath.Join(cfg.dir, c.name+".console")
	results := filepath.Join(cfg.dir, c.name+".results")
	os.Remove(console)
	os.Remove(results)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	args := []string{
		"-accel", cfg.accel, "-m", cfg.memory, "-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", cfg.kernel, "-initrd", cfg.initrd, "-append", bootCmdline(c.name),
		"-serial", "file:" + console, "-serial", "file:" + results,
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		runErr = fmt.Errorf("timed out after %v: %w", c.timeout, ctx.Err())
	}
	res, _ := os.ReadFile(results)
	con, _ := os.ReadFile(console)
	rs := evaluate(c, res, con)
	if runErr != nil {
		rs = append(rs, result{status: "FAIL", name: "vm/" + c.name + "/qemu", detail: fmt.Sprintf("%v %s (console: %s)", runErr, strings.TrimSpace(stderr.String()), console)})
	}
	return rs
}

// evaluate turns a chain's results channel and console into results:
// those the guest reported, and one failure for each boot that did not
// come up and finish as c plans.
func evaluate(c chain, resultsLog, console []byte) []result {
	var rs []result
	booted := map[int]bool{}
	done := map[int]bool{}
	for _, l := range splitLines(resultsLog) {
		i := strings.Index(l, resultPrefix)
		if i < 0 {
			continue
		}
		f := strings.SplitN(l[i+len(resultPrefix):], " ", 4)
		switch {
		case len(f) >= 3 && f[0] == "result":
			r := result{status: f[1], name: f[2]}
			if len(f) == 4 {
				r.detail = f[3]
			}
			rs = append(rs, r)
		case len(f) >= 3 && (f[0] == "boot" || f[0] == "done") && f[1] == c.name:
			n, err := strconv.Atoi(f[2])
			if err == nil {
				if f[0] == "boot" {
					booted[n] = true
				} else {
					done[n] = true
				}
			}
		}
	}
	for n, b := range c.boots {
		name := bootName(c.name, n)
		switch {
		case len(b.panics) > 0:
			missing := ""
			for _, p := range b.panics {
				if !bytes.Contains(console, []byte(p)) && missing == "" {
					missing = p
				}
			}
			switch {
			case booted[n]:
				rs = append(rs, result{status: "FAIL", name: b.panicsResult, detail: fmt.Sprintf("boot %d came up: the kernel no longer panics here (fixed?); the fake's model of this bug must change", n)})
			case missing == "":
				rs = append(rs, result{status: "PASS", name: b.panicsResult})
			default:
				rs = append(rs, result{status: "FAIL", name: b.panicsResult, detail: fmt.Sprintf("boot %d did not come up, but the console lacks %q; it ends: %s", n, missing, tail(console, 5))})
			}
			return rs // nothing boots after a panic
		case !booted[n]:
			rs = append(rs, result{status: "FAIL", name: name, detail: "never came up; console ends: " + tail(console, 12)})
			return rs
		case !done[n]:
			rs = append(rs, result{status: "FAIL", name: name, detail: "came up but never finished; console ends: " + tail(console, 12)})
			return rs
		}
	}
	return rs
}

// tail returns the last n non-empty lines of b, joined with " | ".
func tail(b []byte, n int) string {
	var lines []string
	for _, l := range splitLines(b) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
