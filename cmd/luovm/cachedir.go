//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// cacheSubdir is the directory under the user's cache directory that holds
// everything luovm fetches and builds: the private apt state, the kernel
// source trees, the kernels and the selftests.
const cacheSubdir = "go-luo"

// defaultCacheDir is filepath.Join(os.UserCacheDir(), "go-luo"),
// $HOME/.cache/go-luo unless XDG_CACHE_HOME says otherwise.
func defaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set one with a flag): %w", err)
	}
	return filepath.Join(d, cacheSubdir), nil
}

// resolveCacheDir returns dir made absolute, or the default cache
// directory when dir is empty. Paths handed to make must be absolute.
func resolveCacheDir(dir string) (string, error) {
	if dir == "" {
		return defaultCacheDir()
	}
	return filepath.Abs(dir)
}

// lockPollInterval is how often lockPath retries a lock that another
// process holds.
const lockPollInterval = 500 * time.Millisecond

// lockPath takes an exclusive flock on the file path (created if absent),
// so that two luovm processes never fetch or build the same thing in the
// same cache at once. It waits for a lock held elsewhere until ctx ends,
// saying once on log that it waits. The lock is released by the returned
// func, or by the kernel when the process dies, so a crashed build never
// leaves the cache locked.
func lockPath(ctx context.Context, path string, log io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the only fd drops the flock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !said {
			fmt.Fprintf(log, "waiting for %s, held by another luovm\n", path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}

// exists reports whether path names an existing file or directory.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
