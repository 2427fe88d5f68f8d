//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cachedBuild returns cacheDir/<kind>/<key>, running build first unless
// that directory exists. build fills stage, the result-to-be, and may use
// work as scratch space; only when it succeeds is stage renamed to the
// final directory, with the build's log beside the results as build.log.
// A build that fails or is interrupted thus never looks finished: its
// log stays at cacheDir/<kind>/<key>.log and its work directory until the
// next attempt, which starts over. Builds of one key are serialized across
// processes by a lock file under cacheDir/locks.
func cachedBuild(ctx context.Context, cacheDir, kind, key string, log io.Writer,
	build func(st *steps, work, stage string) error) (string, error) {
	root := filepath.Join(cacheDir, kind)
	final := filepath.Join(root, key)
	if exists(final) {
		fmt.Fprintf(log, "%s: cached in %s\n", kind, final)
		return final, nil
	}
	unlock, err := lockPath(ctx, filepath.Join(cacheDir, "locks", kind+"-"+key), log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if exists(final) { // built by whoever held the lock
		fmt.Fprintf(log, "%s: cached in %s\n", kind, final)
		return final, nil
	}
	work, stage := final+".work", final+".tmp"
	for _, d := range []string{work, stage} {
		if err := os.RemoveAll(d); err != nil { // left by an earlier attempt
			return "", err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	logPath := final + ".log"
	st, err := newSteps(kind, log, logPath)
	if err != nil {
		return "", err
	}
	start := time.Now()
	err = build(st, work, stage)
	if cerr := st.close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	if err := os.Rename(logPath, filepath.Join(stage, "build.log")); err != nil {
		return "", err
	}
	if err := os.Rename(stage, final); err != nil {
		return "", err
	}
	os.RemoveAll(work)
	fmt.Fprintf(log, "%s: built %s in %s\n", kind, final, time.Since(start).Round(time.Second))
	return final, nil
}

// kbuildPathError says why kbuild cannot work in dir, or is nil: make
// splits words at spaces and treats ':' as a rule separator.
func kbuildPathError(dir string) error {
	if strings.ContainsAny(dir, " \t\n:") {
		return fmt.Errorf("%q: kbuild cannot build in a path with spaces or colons; choose another cache directory", dir)
	}
	return nil
}
