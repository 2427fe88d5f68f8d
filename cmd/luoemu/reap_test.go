//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/go-luo/luo/liveupdate"
)

func init() { testHelpers["reapstress"] = reapStress }

// reapStress, under luoemu, closes hundreds of session fds and the device
// at once, then at once opens the device again and reuses a name, round
// after round: on the kernel every release has happened when close
// returns, so neither may fail.
func reapStress(args []string) int {
	for round := range 25 {
		d, err := liveupdate.Open(liveupdate.DefaultPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "round %d: open right after the last close: %v\n", round, err)
			return 1
		}
		var held []*liveupdate.Session
		for i := range 300 {
			s, err := d.CreateSession(fmt.Sprintf("s%d", i))
			if err != nil {
				fmt.Fprintf(os.Stderr, "round %d: create s%d right after closing it: %v\n", round, i, err)
				return 1
			}
			held = append(held, s)
		}
		for _, s := range held {
			s.Close()
		}
		d.Close()
	}
	return 0
}

// TestReleaseBeforeCloseReturns runs reapStress under luoemu. The fake
// releases a file when it reads its socket's hang-up; before it reaps, a
// request handles every hang-up that has happened. A reap that stopped at
// a pass of hang-ups the objects' own goroutines were already releasing
// missed the rest: EBUSY or EEXIST, in one run of this test in three or so.
func TestReleaseBeforeCloseReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("a stress test")
	}
	// The two runs are independent luoemu trees, each with its own fake:
	// they run side by side, as the package's other slow tests do.
	t.Parallel()
	for run := range 2 {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) {
			t.Parallel()
			out, err := luoemu(nil, helperCommand(t, "reapstress")...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}
