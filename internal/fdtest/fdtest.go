// Package fdtest finds file descriptors that tests leave open, by comparing
// /proc/self/fd before and after.
package fdtest

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Table maps each open descriptor of this process to what it refers to
// (its /proc/self/fd link). It is nil where /proc is not mounted.
func Table() map[int]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	m := make(map[int]string, len(ents))
	for _, ent := range ents {
		n, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + ent.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		m[n] = link
	}
	return m
}

// Leaked lists, sorted, the descriptors open in after that were not open
// in before, as "N -> link". Descriptors closed meanwhile (the runtime's,
// a finished child's pidfd) are not leaks and are not listed.
func Leaked(before, after map[int]string) []string {
	var leaked []string
	for fd, link := range after {
		if before[fd] != link {
			leaked = append(leaked, strconv.Itoa(fd)+" -> "+link)
		}
	}
	slices.Sort(leaked)
	return leaked
}

// Check fails t if it ends with descriptors open that were not open when
// Check was called. Call it first, so that its cleanup runs after every
// other (a fake kernel's Close among them). It waits up to wait for closes
// still in flight on other goroutines before judging. Without /proc it
// does nothing.
func Check(t testing.TB, wait time.Duration) {
	t.Helper()
	// Start the runtime's poller now, so that its fds are not counted.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := Table()
	if before == nil {
		return
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for {
			leaked := Leaked(before, Table())
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				if len(leaked) > 10 {
					leaked = append(leaked[:10], "... ("+strconv.Itoa(len(leaked)-10)+" more)")
				}
				t.Errorf("file descriptors leaked: %v", leaked)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
