//go:build linux

package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseGoTest(t *testing.T) {
	out := `=== RUN   TestKernelConformance
=== RUN   TestKernelConformance/preserve
=== RUN   TestKernelConformance/preserve/bad_fd_EBADF
=== RUN   TestKernelConformance/preserve/same_file
    incoming_linux.go:12: preserve a reopen: succeeded, want EBUSY
    incoming_linux.go:13: second line
=== RUN   TestKernelConformance/finish/empty
    env_linux.go:200: needs incoming sessions, and target "kernel" cannot kexec
--- FAIL: TestKernelConformance (0.10s)
    --- FAIL: TestKernelConformance/preserve (0.02s)
        --- PASS: TestKernelConformance/preserve/bad_fd_EBADF (0.01s)
        --- FAIL: TestKernelConformance/preserve/same_file (0.01s)
    --- PASS: TestKernelConformance/finish (0.00s)
        --- SKIP: TestKernelConformance/finish/empty (0.00s)
FAIL
`
	got := parseGoTest([]byte(out), "conformance")
	want := []result{
		{"PASS", "conformance/preserve/bad_fd_EBADF", ""},
		{"FAIL", "conformance/preserve/same_file", "incoming_linux.go:12: preserve a reopen: succeeded, want EBUSY"},
		{"SKIP", "conformance/finish/empty", `env_linux.go:200: needs incoming sessions, and target "kernel" cannot kexec`},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseGoTest:\n got %q\nwant %q", got, want)
	}
}

func TestParseTAP(t *testing.T) {
	out := `TAP version 13
1..3
# Starting 3 tests from 1 test cases.
#  RUN           liveupdate.create
#            OK  liveupdate.create
ok 1 liveupdate.create
not ok 2 liveupdate.preserve # bad errno
ok 3 liveupdate.later # SKIP no device
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
`
	got := parseTAP([]byte(out), "kselftest/liveupdate")
	want := []result{
		{"PASS", "kselftest/liveupdate/liveupdate.create", ""},
		{"FAIL", "kselftest/liveupdate/liveupdate.preserve", "bad errno"},
		{"SKIP", "kselftest/liveupdate/liveupdate.later", "no device"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseTAP:\n got %q\nwant %q", got, want)
	}
}

func TestCmdline(t *testing.T) {
	c := bootCmdline("suite")
	name, boot, err := parseCmdline(c)
	if err != nil || name != "suite" || boot != 0 {
		t.Fatalf("parseCmdline(%q) = %q, %d, %v", c, name, boot, err)
	}
	next := nextCmdline(c, 2)
	if name, boot, err := parseCmdline(next); err != nil || name != "suite" || boot != 2 {
		t.Errorf("parseCmdline(nextCmdline) = %q, %d, %v (%q)", name, boot, err, next)
	}
	if !strings.Contains(next, "liveupdate=on") {
		t.Errorf("nextCmdline dropped liveupdate=on: %q", next)
	}
	for _, bad := range []string{"console=ttyS0", "luovm.chain=x", "luovm.chain=x luovm.boot=-1", "luovm.chain=x luovm.boot=z"} {
		if _, _, err := parseCmdline(bad); err == nil {
			t.Errorf("parseCmdline(%q) succeeded", bad)
		}
	}
}

func TestEvaluate(t *testing.T) {
	c := chain{name: "c", boots: []bootPlan{{}, {}}}
	res := "luovm: boot c 0 7.2.13\nluovm: result PASS a/b\nluovm: done c 0\nluovm: boot c 1 7.2.13\nluovm: result FAIL a/c why not\n"
	got := evaluate(c, []byte(res), []byte("console\nlast words\n"))
	want := []result{
		{"PASS", "a/b", ""},
		{"FAIL", "a/c", "why not"},
		{"FAIL", "vm/c/boot1", "came up but never finished; console ends: console | last words"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("evaluate:\n got %q\nwant %q", got, want)
	}

	p := chain{name: "p", boots: []bootPlan{{}, {panics: []string{"bad block", "failed to initialize"}, panicsResult: "kernel-bug/x"}}}
	first := "luovm: boot p 0 v\nluovm: done p 0\n"
	for _, tc := range []struct {
		res, console, status string
	}{
		{first, "bad block\nKernel panic - not syncing: The tree failed to initialize properly", "PASS"},
		{first, "Kernel panic - not syncing: The tree failed to initialize properly", "FAIL"},
		{first, "reboot: machine restart", "FAIL"},
		{first + "luovm: boot p 1 v\nluovm: done p 1\n", "", "FAIL"},
	} {
		got := evaluate(p, []byte(tc.res), []byte(tc.console))
		if len(got) != 1 || got[0].name != "kernel-bug/x" || got[0].status != tc.status {
			t.Errorf("evaluate of a panicking boot (console %q): %q, want one %s", tc.console, got, tc.status)
		}
	}
}

func TestSummarize(t *testing.T) {
	rs := []result{
		{"PASS", "conformance/a/x", ""},
		{"SKIP", "conformance/a/x", "needs a hook"},
		{"PASS", "conformance/a/y", ""},
		{"FAIL", "conformance/a/y", "bad"},
		{"SKIP", "conformance/a/z", `target "kernel" cannot kexec`},
		{"PASS", "examples/h", ""},
	}
	var b bytes.Buffer
	if n := summarize(&b, rs, false); n != 2 {
		t.Errorf("summarize counted %d failures, want 2 (a failure, and a skip for want of a kexec)", n)
	}
	out := b.String()
	for _, want := range []string{"SKIP conformance/a/x: needs a hook\n", "FAIL conformance/a/y: bad\n", "FAIL conformance/a/z:", "vm conformance: 0 passed, 2 failed, 1 skipped\n", "\nvm: 1 passed, 2 failed, 1 skipped\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if n := summarize(&b, nil, false); n == 0 {
		t.Errorf("summarize of no results counted no failure:\n%s", b.String())
	}
}

func TestPlan(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range plan() {
		if seen[c.name] {
			t.Errorf("two chains named %q", c.name)
		}
		seen[c.name] = true
		if len(c.boots) == 0 || c.timeout <= 0 {
			t.Errorf("chain %q: %d boots, timeout %v", c.name, len(c.boots), c.timeout)
		}
		for n, b := range c.boots {
			if len(b.panics) > 0 && n != len(c.boots)-1 {
				t.Errorf("chain %q: boot %d panics but is not the last", c.name, n)
			}
			for _, s := range b.steps {
				if s.result == "" || (s.kind == inProcess) != (s.fn != nil) {
					t.Errorf("chain %q boot %d: malformed step %+v", c.name, n, s)
				}
			}
		}
	}
}

func TestConformanceResultsRoundTrip(t *testing.T) {
	rs := []result{
		{"PASS", "conformance/a/x", ""},
		{"SKIP", "conformance/a/y", "needs a hook"},
		{"FAIL", "conformance/b/z", "bad: very"},
		{"PASS", "examples/h", ""},
	}
	path := t.TempDir() + "/r"
	if err := writeConformanceResults(path, rs); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "PASS a/x\nSKIP a/y: needs a hook\nFAIL b/z: bad: very\n"; string(b) != want {
		t.Errorf("wrote %q, want %q", b, want)
	}
	m, err := parseConformanceResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := compareConformance(rs, m, "f"); len(got) != 1 || got[0].status != "PASS" {
		t.Errorf("compare with itself: %q", got)
	}
	m["a/x"] = "SKIP"
	delete(m, "b/z")
	m["c/new"] = "PASS"
	got := compareConformance(rs, m, "f")
	want := []result{
		{"FAIL", "conformance-list/a/x", "PASS on the kernel, SKIP in f"},
		{"FAIL", "conformance-list/b/z", "FAIL on the kernel, absent in f"},
		{"FAIL", "conformance-list/c/new", "absent on the kernel, PASS in f"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("compare:\n got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"OK a/x\n", "PASS\n", "PASS a/x\nPASS a/x\n", "PASS a b\n"} {
		if _, err := parseConformanceResults([]byte(bad)); err == nil {
			t.Errorf("parseConformanceResults(%q) succeeded", bad)
		}
	}
}
