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

// fakeApt puts apt-get and apt-cache scripts first in $PATH: apt-get
// records its arguments in the returned file and fails as if offline;
// apt-cache prints policy.
func fakeApt(t *testing.T, policy string) (calls string) {
	t.Helper()
	bin := t.TempDir()
	calls = filepath.Join(bin, "calls")
	scripts := map[string]string{
		"apt-get":   "#!/bin/sh\necho \"$@\" >> " + calls + "\necho 'E: offline' >&2\nexit 100\n",
		"apt-cache": "#!/bin/sh\ncat <<'EOF'\n" + policy + "EOF\n",
	}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls
}

// fakeCache makes a cache holding the private sources file fetchSource
// would write on this machine (so that it is not taken for a change of
// mirror) and a source tree of each version.
func fakeCache(t *testing.T, versions ...string) string {
	t.Helper()
	cache := t.TempDir()
	p := newAptPaths(cache)
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "Types: deb\n" // kept when the machine names no mirror
	if srcs, err := machineSources("/etc/apt"); err == nil {
		if m, err := findDebianMirror(srcs); err == nil {
			text = privateSourcesText(m)
		}
	}
	if err := os.WriteFile(p.Sources, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if err := os.MkdirAll(filepath.Join(cache, "src", sourceVersionDir(v), sourcePackage), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return cache
}

const policy7213 = "linux-source-7.2:\n  Installed: (none)\n  Candidate: 7.2.13-1\n"

// Offline with the candidate's tree in the cache: the failed update is
// only a note, nothing is downloaded, the tree is returned.
func TestFetchSourceOfflineCached(t *testing.T) {
	calls := fakeApt(t, policy7213)
	cache := fakeCache(t, "7.2.13-1")
	var log bytes.Buffer
	src, err := fetchSource(context.Background(), cache, &log)
	if err != nil {
		t.Fatal(err)
	}
	if src.Version != "7.2.13-1" || src.Dir != filepath.Join(cache, "src", "7.2.13-1", sourcePackage) {
		t.Errorf("source %+v", src)
	}
	b, _ := os.ReadFile(calls)
	if got := string(b); !strings.Contains(got, " update --error-on=any\n") || strings.Contains(got, "download") {
		t.Errorf("apt-get calls:\n%s", got)
	}
	if !strings.Contains(log.String(), "using the package lists as they are") {
		t.Errorf("log:\n%s", log.String())
	}
	if exists(newAptPaths(cache).Updated) {
		t.Error("a failed update marked the lists fresh")
	}
}

// Fresh lists are not updated: a cache hit runs no apt-get at all.
func TestFetchSourceFreshLists(t *testing.T) {
	calls := fakeApt(t, policy7213)
	cache := fakeCache(t, "7.2.13-1")
	if err := touch(newAptPaths(cache).Updated); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := fetchSource(context.Background(), cache, &log); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("apt-get ran with fresh lists:\n%s", b)
	}
}

// With no candidate (no lists, offline) the newest cached tree is used;
// with no tree either it is an error.
func TestFetchSourceNoCandidate(t *testing.T) {
	fakeApt(t, "")
	cache := fakeCache(t, "7.2.12-1")
	var log bytes.Buffer
	src, err := fetchSource(context.Background(), cache, &log)
	if err != nil || src.Version != "7.2.12-1" {
		t.Fatalf("fetchSource = %+v, %v", src, err)
	}
	if !strings.Contains(log.String(), "using the cached linux-source-7.2 7.2.12-1") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, err := fetchSource(context.Background(), fakeCache(t), &log); err == nil || !strings.Contains(err.Error(), "no candidate") {
		t.Errorf("empty cache: %v", err)
	}
}

// A cancelled fetch is an error even with a tree in the cache.
func TestFetchSourceCancelled(t *testing.T) {
	fakeApt(t, policy7213)
	cache := fakeCache(t, "7.2.13-1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if src, err := fetchSource(ctx, cache, &bytes.Buffer{}); err == nil {
		t.Errorf("cancelled fetchSource = %+v", src)
	}
}
