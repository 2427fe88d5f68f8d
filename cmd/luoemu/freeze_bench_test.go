//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func init() { testHelpers["write-loop"] = writeLoopHelper }

// writeLoopHelper makes args[0] one-byte pwrites to a memfd that is not
// preserved, after preserving another when args[1] is "preserved", and
// prints the mean time of one.
func writeLoopHelper(args []string) int {
	if len(args) != 2 {
		return 2
	}
	count, err := strconv.Atoi(args[0])
	if err != nil {
		return 2
	}
	if args[1] == "preserved" {
		d, err := liveupdate.Open(liveupdate.DefaultPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer d.Close()
		s, err := d.CreateSession("bench")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer s.Close()
		m, err := memfdOf(4096)
		if err != nil || s.PreserveFD(m, 1) != nil {
			fmt.Fprintln(os.Stderr, "preserve failed")
			return 2
		}
	}
	fd, err := memfdOf(4096)
	if err != nil {
		return 2
	}
	buf := []byte{'x'}
	start := time.Now()
	for range count {
		if _, err := unix.Pwrite(fd, buf, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Printf("ns/write %d\n", time.Since(start).Nanoseconds()/int64(count))
	return 0
}

// BenchmarkFreezeWrite measures a write(2)-family call of a file that is
// not frozen under luoemu, against the same call unfiltered
// (-freeze=false) in the same run: with -freeze and nothing preserved
// (the fast path, x-freeze-idle) and with a memfd preserved (each write's
// fd looked up and compared, x-freeze-preserved).
func BenchmarkFreezeWrite(b *testing.B) {
	const writes = 20000
	run := func(flag, mode string) float64 {
		out, err := luoemu([]string{flag}, helperCommand(b, "write-loop", strconv.Itoa(writes), mode)...).CombinedOutput()
		if err != nil {
			b.Fatalf("write-loop %s %s: %v\n%s", flag, mode, err, out)
		}
		var ns float64
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "ns/write "); ok {
				ns, _ = strconv.ParseFloat(v, 64)
			}
		}
		if ns <= 0 {
			b.Fatalf("write-loop printed no time:\n%s", out)
		}
		return ns
	}
	var base, idle, preserved float64
	for b.Loop() {
		base += run("-freeze=false", "none")
		idle += run("-freeze", "none")
		preserved += run("-freeze", "preserved")
	}
	b.ReportMetric(base/float64(b.N), "ns/write-unfiltered")
	b.ReportMetric(idle/base, "x-freeze-idle")
	b.ReportMetric(preserved/base, "x-freeze-preserved")
}
