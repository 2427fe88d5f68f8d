//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A failed build leaves nothing that looks finished; the next attempt
// starts over from clean scratch directories; a finished build is
// returned without building again.
func TestCachedBuild(t *testing.T) {
	cache := t.TempDir()
	ctx := context.Background()
	calls := 0
	fail := errors.New("injected build failure")
	build := func(fails bool) func(st *steps, work, stage string) error {
		return func(st *steps, work, stage string) error {
			calls++
			for _, d := range []string{work, stage} {
				if ents, err := os.ReadDir(d); err != nil || len(ents) != 0 {
					t.Errorf("%s: %v entries %v, want an empty directory", d, err, ents)
				}
			}
			if err := st.run(ctx, work, nil, "sh", "-c", "echo building; echo half > "+filepath.Join(stage, "out")); err != nil {
				return err
			}
			if fails {
				return fail
			}
			return os.WriteFile(filepath.Join(stage, "out"), []byte("done"), 0o644)
		}
	}
	final := filepath.Join(cache, "thing", "k1")
	if _, err := cachedBuild(ctx, cache, "thing", "k1", io.Discard, build(true)); !errors.Is(err, fail) {
		t.Fatalf("failing build: %v", err)
	}
	if exists(final) || exists(final+".tmp") {
		t.Fatal("a failed build left a result")
	}
	if b, err := os.ReadFile(final + ".log"); err != nil || !strings.Contains(string(b), "building") {
		t.Errorf("log of the failed build: %q, %v", b, err)
	}
	// What a killed build leaves behind.
	for _, d := range []string{final + ".work/junk", final + ".tmp/junk"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	dir, err := cachedBuild(ctx, cache, "thing", "k1", &log, build(false))
	if err != nil || dir != final {
		t.Fatalf("cachedBuild = %q, %v", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "done" {
		t.Errorf("result %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "build.log")); err != nil || !strings.Contains(string(b), "building") {
		t.Errorf("build.log %q, %v", b, err)
	}
	if exists(final+".work") || exists(final+".tmp") || exists(final+".log") {
		t.Error("scratch left after a successful build")
	}
	if !strings.Contains(log.String(), "thing: built "+final) {
		t.Errorf("progress: %q", log.String())
	}
	log.Reset()
	if dir, err := cachedBuild(ctx, cache, "thing", "k1", &log, build(false)); err != nil || dir != final {
		t.Fatalf("second cachedBuild = %q, %v", dir, err)
	}
	if calls != 2 {
		t.Errorf("build ran %d times, want 2 (the cache hit must not build)", calls)
	}
	if log.String() != "thing: cached in "+final+"\n" {
		t.Errorf("progress of a cache hit: %q", log.String())
	}
}

// A lock held elsewhere is waited for, and the wait ends with ctx.
func TestLockPathWaitsForHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "x")
	unlock, err := lockPath(context.Background(), p, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var log bytes.Buffer
	if _, err := lockPath(ctx, p, &log); !errors.Is(err, context.Canceled) {
		t.Errorf("second lock: %v, want context.Canceled", err)
	}
	if !strings.Contains(log.String(), "waiting for "+p) {
		t.Errorf("log %q", log.String())
	}
	unlock()
	unlock2, err := lockPath(context.Background(), p, io.Discard)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestKbuildPathError(t *testing.T) {
	if err := kbuildPathError("/root/.cache/go-luo/kernel/7.2.13-1-abc.work"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"/home/my user/.cache", "/c/1:7.2"} {
		if kbuildPathError(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
