//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealBuild fetches the kernel source, builds the kernel and the
// selftests, then asks for each again and expects the cache to answer.
// It takes minutes and needs the network the first time, so it runs only
// with LUOVM_BUILD_TEST=1; LUOVM_CACHE_DIR chooses the cache (default
// defaultCacheDir).
func TestRealBuild(t *testing.T) {
	if os.Getenv("LUOVM_BUILD_TEST") != "1" {
		t.Skip("set LUOVM_BUILD_TEST=1 to fetch and build a real kernel")
	}
	ctx := context.Background()
	cache := os.Getenv("LUOVM_CACHE_DIR")
	log := testLogWriter{t}
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("TIME %s: %s", what, time.Since(start).Round(time.Millisecond))
	}
	for round := 1; round <= 2; round++ {
		var src kernelSource
		var bz, tests string
		timed("fetchSource", func() (err error) { src, err = fetchSource(ctx, cache, log); return })
		timed("buildKernel", func() (err error) { bz, err = buildKernel(ctx, src, luoKernelConfig, cache, log); return })
		timed("buildSelftests", func() (err error) { tests, err = buildSelftests(ctx, src, cache, log); return })
		t.Logf("round %d: source %s (%s), kernel %s, selftests %s", round, src.Dir, src.Version, bz, tests)
		fi, err := os.Stat(bz)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < 1<<20 {
			t.Fatalf("bzImage %s: only %d bytes", bz, fi.Size())
		}
		for _, p := range []string{"liveupdate", "luo_kexec_simple", "luo_multi_session", "luo_stress_sessions", "luo_stress_files"} {
			if _, err := os.Stat(filepath.Join(tests, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testLogWriter sends progress lines to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
