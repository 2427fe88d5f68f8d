//go:build linux

package fake_test

import (
	"os"
	"strings"
	"testing"
	"time"
)

// checkFDs fails the test if it ends with file descriptors open that were
// not open when it started: the fake's and the test's own must all be
// closed. Call it first, so its cleanup runs after everything else.
func checkFDs(t *testing.T) {
	t.Helper()
	before := openFDs(t)
	t.Cleanup(func() {
		// A release or close may still be finishing on another
		// goroutine; give it a moment before judging.
		var leaked []string
		for range 50 {
			leaked = leaked[:0]
			now := openFDs(t)
			for fd, what := range now {
				if _, ok := before[fd]; !ok {
					leaked = append(leaked, fd+" -> "+what)
				}
			}
			if len(leaked) == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("file descriptors leaked: %s", strings.Join(leaked, ", "))
	})
}

func openFDs(t *testing.T) map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	m := map[string]string{}
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the fd ReadDir itself used
		}
		m[e.Name()] = link
	}
	return m
}
