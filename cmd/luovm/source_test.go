//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The apt options point every piece of state into the cache and leave the
// machine's lists, status, sources and preferences alone.
func TestAptOptions(t *testing.T) {
	got := strings.Join(aptOptions(newAptPaths("/c")), " ")
	want := "-o Dir::Etc::SourceList=/c/apt/debian.sources" +
		" -o Dir::Etc::SourceParts=/dev/null" +
		" -o Dir::Etc::Preferences=/dev/null" +
		" -o Dir::Etc::PreferencesParts=/dev/null" +
		" -o Dir::State=/c/apt" +
		" -o Dir::State::Lists=/c/apt/lists" +
		" -o Dir::State::status=/c/apt/status" +
		" -o Dir::Cache=/c/apt/cache" +
		" -o Debug::NoLocking=1" +
		" -o Acquire::Languages=none"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseCandidate(t *testing.T) {
	policy := "linux-source-7.2:\n  Installed: (none)\n  Candidate: 7.2.13-1\n  Version table:\n     7.2.13-1 500\n"
	if v, err := parseCandidate([]byte(policy)); err != nil || v != "7.2.13-1" {
		t.Errorf("parseCandidate = %q, %v", v, err)
	}
	for _, bad := range []string{"", "linux-source-7.2:\n  Installed: (none)\n  Candidate: (none)\n", "N: Unable to locate package\n"} {
		if v, err := parseCandidate([]byte(bad)); err == nil {
			t.Errorf("parseCandidate(%q) = %q, want an error", bad, v)
		}
	}
}

// An epoch's ':' is escaped as apt and make need it.
func TestVersionNames(t *testing.T) {
	if got := debFileName("1:7.2.13-1"); got != "linux-source-7.2_1%3a7.2.13-1_all.deb" {
		t.Errorf("debFileName = %q", got)
	}
	if got := sourceVersionDir("1:7.2.13-1"); got != "1_7.2.13-1" {
		t.Errorf("sourceVersionDir = %q", got)
	}
}

// The offline fallback takes the most recently extracted tree and
// ignores scratch directories and versions without a tree.
func TestNewestCachedSource(t *testing.T) {
	root := t.TempDir()
	if _, ok := newestCachedSource(root); ok {
		t.Fatal("found a source in an empty cache")
	}
	mk := func(dir string, age time.Duration) {
		if err := os.MkdirAll(filepath.Join(root, dir, sourcePackage), 0o755); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(root, dir), when, when); err != nil {
			t.Fatal(err)
		}
	}
	mk("7.2.12-1", 48*time.Hour)
	mk("1_7.2.13-2", time.Hour)
	mk(".extract", 0)
	if err := os.Mkdir(filepath.Join(root, "7.2.14-1"), 0o755); err != nil { // no tree in it
		t.Fatal(err)
	}
	src, ok := newestCachedSource(root)
	if !ok || src.Version != "1:7.2.13-2" || src.Dir != filepath.Join(root, "1_7.2.13-2", sourcePackage) {
		t.Errorf("newestCachedSource = %+v, %v", src, ok)
	}
}
