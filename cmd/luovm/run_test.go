//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc\n"},
		{"a\nb\n", 5, "a\nb\n"},
		{"a\nb\n\n\n", 1, "b\n"},
		{"only", 1, "only\n"},
		{"a\nb\n", 0, ""},
	} {
		if got := lastLines([]byte(c.in), c.n); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestReadTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for limit, want := range map[int64]string{4: "6789", 10: "0123456789", 100: "0123456789"} {
		if b, err := readTail(p, limit); err != nil || string(b) != want {
			t.Errorf("readTail(%d) = %q, %v", limit, b, err)
		}
	}
}

// A failing command's error names it and the log file; the log's tail
// goes to the progress writer; the log holds the whole output.
func TestStepsRunFailure(t *testing.T) {
	var progress bytes.Buffer
	logPath := filepath.Join(t.TempDir(), "build.log")
	st, err := newSteps("kernel", &progress, logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	ctx := context.Background()
	if err := st.run(ctx, "/", nil, "sh", "-c", "echo first; echo oops >&2"); err != nil {
		t.Fatal(err)
	}
	out, err := st.output(ctx, "/", []string{"LUOVM_T=v"}, "sh", "-c", "echo $LUOVM_T")
	if err != nil || string(out) != "v\n" {
		t.Errorf("output = %q, %v", out, err)
	}
	err = st.run(ctx, "/", nil, "sh", "-c", "echo last words; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), logPath) {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(progress.String(), "last words\n") || !strings.Contains(progress.String(), "first") {
		t.Errorf("progress:\n%s", progress.String())
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"first\n", "oops\n", "v\n", "last words\n", "$ cd / && sh -c echo last words; exit 3\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("log lacks %q:\n%s", s, b)
		}
	}
}

// A cancelled context is reported as such, without a log tail.
func TestStepsRunCancelled(t *testing.T) {
	var progress bytes.Buffer
	st, err := newSteps("x", &progress, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.run(ctx, "/", nil, "sh", "-c", "exit 0"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v", err)
	}
	if strings.Contains(progress.String(), "last lines") {
		t.Errorf("tail printed for a cancellation:\n%s", progress.String())
	}
}

func TestShortCmdline(t *testing.T) {
	got := shortCmdline("apt-get", []string{"-o", "Dir::State=/c", "-o", "Debug::NoLocking=1", "update", "-o"})
	if got != "apt-get update -o" {
		t.Errorf("got %q", got)
	}
}

// try does not print the tail of the log.
func TestStepsTry(t *testing.T) {
	var progress bytes.Buffer
	st, err := newSteps("x", &progress, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := st.try(context.Background(), "/", nil, "sh", "-c", "echo noise; exit 1"); err == nil {
		t.Fatal("no error")
	}
	if progress.Len() != 0 {
		t.Errorf("progress:\n%s", progress.String())
	}
}
