//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -selftests-dir with the source and the selftests in the cache prints
// only the selftests' directory on stdout, builds nothing and boots
// nothing.
func TestSelftestsDirCached(t *testing.T) {
	fakeApt(t, policy7213)
	cache := fakeCache(t, "7.2.13-1")
	want := filepath.Join(cache, "selftests", selftestsKey("7.2.13-1"))
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := hostMain([]string{"-cache", cache, "-selftests-dir"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	if got := stdout.String(); got != want+"\n" {
		t.Errorf("stdout %q, want %q\nstderr:\n%s", got, want+"\n", stderr.String())
	}
	if !strings.Contains(stderr.String(), "selftests: cached in "+want) {
		t.Errorf("stderr does not say the selftests were cached:\n%s", stderr.String())
	}
	if exists(filepath.Join(cache, "kernel")) {
		t.Error("-selftests-dir built a kernel")
	}
}

// A failure says why on stderr, exits 1 and prints no directory.
func TestSelftestsDirNoSource(t *testing.T) {
	fakeApt(t, "linux-source-7.2:\n  Installed: (none)\n  Candidate: (none)\n")
	cache := fakeCache(t)
	var stdout, stderr bytes.Buffer
	if code := hostMain([]string{"-cache", cache, "-selftests-dir"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	if !strings.Contains(stderr.String(), "luovm: kernel source:") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}
