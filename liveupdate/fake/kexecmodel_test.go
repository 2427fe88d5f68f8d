//go:build linux

package fake

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/go-luo/luo/kho"
)

// BenchmarkKexecModel measures the kernel's side of a live update of n
// empty sessions (freeze, KHO write, boot, restore at the first open) with
// the sessions put on the outgoing list directly, without their fds, so
// that sizes past what RLIMIT_NOFILE allows BenchmarkKexecSessions can
// run: 100,000 sessions are 200,000 fds.
func BenchmarkKexecModel(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				k, err := New()
				if err != nil {
					b.Fatal(err)
				}
				h := &k.cur.outgoing
				for i := range n {
					h.sessions = append(h.sessions, &session{name: fmt.Sprint("s-", i)})
				}
				h.nblocks = (n + kho.SessionsPerBlock - 1) / kho.SessionsPerBlock
				runtime.GC() // a collection due now would land in the timing
				b.StartTimer()
				if err := k.Kexec(); err != nil {
					b.Fatal(err)
				}
				d, err := k.Open()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := len(k.State().Incoming); got != n {
					b.Fatalf("%d incoming sessions, want %d", got, n)
				}
				d.Close()
				k.Close()
			}
		})
	}
}
