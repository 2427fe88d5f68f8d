package main

import (
	"bytes"
	"strings"
	"testing"
)

// runLuoctl runs luoctl with args and returns what it wrote and its exit
// status.
func runLuoctl(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func diff(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // a line the output must hold
		stderr string
	}{
		{nil, 2, "", "luoctl: no command given: run 'luoctl check' or 'luoctl inspect IMAGE' (see 'luoctl -h')\n"},
		{[]string{"-h"}, 0, "Usage: luoctl [-h] COMMAND [flags] [args]", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help", "inspect"}, 0, "Usage: luoctl inspect [-json] IMAGE", ""},
		{[]string{"frob"}, 2, "", "luoctl: unknown command \"frob\": the commands are check and inspect (see 'luoctl -h')\n"},
		{[]string{"-json", "check"}, 2, "", "luoctl: flag -json before the command: luoctl takes only -h there; put a command's flags after it, as in 'luoctl check -json'\n"},
		{[]string{"check", "-h"}, 0, "-device PATH", ""},
		{[]string{"check", "now"}, 2, "", "luoctl: check takes no arguments, got \"now\": use -device PATH to name the device\n"},
		{[]string{"check", "-x"}, 2, "", "luoctl: luoctl check: flag provided but not defined: -x (see 'luoctl check -h')\n"},
		{[]string{"inspect", "-h"}, 0, "Usage: luoctl inspect [-json] IMAGE", ""},
		{[]string{"inspect", "a", "-h"}, 0, "-json", ""},
		{[]string{"inspect"}, 2, "", "luoctl: inspect needs the IMAGE file to decode: luoctl inspect [-json] IMAGE\n"},
		{[]string{"inspect", "a", "b"}, 2, "", "luoctl: inspect takes one IMAGE, got 2 arguments: a b\n"},
		{[]string{"inspect", "-json=maybe", "a"}, 2, "", "luoctl: luoctl inspect: invalid boolean value \"maybe\" for -json: parse error (see 'luoctl inspect -h')\n"},
	} {
		out, errs, code := runLuoctl(tc.args...)
		if code != tc.code {
			t.Errorf("luoctl %q: exit %d, want %d", tc.args, code, tc.code)
		}
		if !strings.Contains(out, tc.stdout) || tc.stdout == "" && out != "" {
			t.Errorf("luoctl %q: stdout %q, want it to hold %q", tc.args, out, tc.stdout)
		}
		if errs != tc.stderr {
			t.Errorf("luoctl %q: stderr %q, want %q", tc.args, errs, tc.stderr)
		}
	}
}
