//go:build linux

package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestKernelKey(t *testing.T) {
	k := kernelKey("7.2.13-1", luoKernelConfig)
	if !regexp.MustCompile(`^7\.2\.13-1-[0-9a-f]{16}$`).MatchString(k) {
		t.Errorf("key %q", k)
	}
	if kernelKey("7.2.13-1", luoKernelConfig) != k {
		t.Error("key not deterministic")
	}
	for what, other := range map[string]string{
		"version":  kernelKey("7.2.13-2", luoKernelConfig),
		"fragment": kernelKey("7.2.13-1", append([]byte("CONFIG_X=y\n"), luoKernelConfig...)),
		"epoch":    kernelKey("1:7.2.13-1", luoKernelConfig),
	} {
		if other == k {
			t.Errorf("a different %s gives the same key %s", what, k)
		}
	}
}

// The embedded fragment is luo-kernel.config: all its options are =y and
// LUO is among them.
func TestEmbeddedFragment(t *testing.T) {
	as := parseConfig(luoKernelConfig)
	if len(as) < 40 {
		t.Fatalf("only %d options in the fragment", len(as))
	}
	have := map[string]bool{}
	for _, a := range as {
		if a.Value != "y" {
			t.Errorf("%s=%s", a.Symbol, a.Value)
		}
		have[a.Symbol] = true
	}
	for _, s := range []string{"CONFIG_LIVEUPDATE", "CONFIG_LIVEUPDATE_MEMFD", "CONFIG_KEXEC_HANDOVER", "CONFIG_KEXEC_FILE", "CONFIG_SERIAL_8250_CONSOLE"} {
		if !have[s] {
			t.Errorf("no %s in the fragment", s)
		}
	}
}

func TestParseConfig(t *testing.T) {
	text := "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\n" +
		"CONFIG_64BIT=y\n# CONFIG_MODULES is not set\nCONFIG_LOG_BUF_SHIFT=17\nCONFIG_FOO=m\n# CONFIG_ a comment\nnot a line\n"
	got := parseConfig([]byte(text))
	want := []configAssignment{
		{"CONFIG_CC_VERSION_TEXT", `"gcc (Debian 12.2.0-14) 12.2.0"`},
		{"CONFIG_64BIT", "y"},
		{"CONFIG_MODULES", "n"},
		{"CONFIG_LOG_BUF_SHIFT", "17"},
		{"CONFIG_FOO", "m"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %q, want %q", i, got[i], want[i])
		}
	}
}

// Options that olddefconfig turned off, made modules, changed or removed
// are named; kept ones are not.
func TestDroppedOptions(t *testing.T) {
	fragment := "CONFIG_LIVEUPDATE=y\nCONFIG_KEXEC_HANDOVER=y\nCONFIG_HUGETLBFS=y\nCONFIG_RD_GZIP=y\n" +
		"CONFIG_NR_CPUS=4\n# CONFIG_MODULES is not set\n# CONFIG_DEBUG_INFO is not set\nCONFIG_GONE=y\n"
	final := "CONFIG_64BIT=y\nCONFIG_LIVEUPDATE=y\n# CONFIG_KEXEC_HANDOVER is not set\nCONFIG_HUGETLBFS=m\nCONFIG_RD_GZIP=y\n" +
		"CONFIG_NR_CPUS=8\n# CONFIG_MODULES is not set\n"
	got := droppedOptions([]byte(fragment), []byte(final))
	want := []string{
		"CONFIG_KEXEC_HANDOVER=y (is not set)",
		"CONFIG_HUGETLBFS=y (=m)",
		"CONFIG_NR_CPUS=4 (=8)",
		"CONFIG_GONE=y (absent)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if d := droppedOptions(luoKernelConfig, luoKernelConfig); len(d) != 0 {
		t.Errorf("the fragment against itself: %q", d)
	}
}

// A fragment without options is refused before anything is built.
func TestBuildKernelEmptyFragment(t *testing.T) {
	_, err := buildKernel(context.Background(), kernelSource{Dir: "/nonexistent", Version: "0"}, []byte("# nothing\n"), t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no CONFIG_ option") {
		t.Errorf("buildKernel with an empty fragment: %v", err)
	}
}
