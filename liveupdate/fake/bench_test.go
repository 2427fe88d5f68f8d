//go:build linux

package fake_test

import (
	"fmt"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// raiseNoFile lets the benchmark hold n sessions: each takes two fds in
// this process (the session and the fake's end of it).
func raiseNoFile(b *testing.B, n uint64) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = n
	if lim.Max < n {
		lim.Max = n
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("needs RLIMIT_NOFILE %d: %v (run as root, or raise the hard limit)", n, err)
	}
}

// BenchmarkKexecSessions measures a live update of n empty sessions: the
// freeze and KHO write, the next kernel's boot from the image, and the
// restore at its first open.
func BenchmarkKexecSessions(b *testing.B) {
	for _, n := range []int{1000, 4000, 10000} {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			raiseNoFile(b, uint64(2*n+1000))
			for range b.N {
				b.StopTimer()
				k, err := fake.New()
				if err != nil {
					b.Fatal(err)
				}
				d, _ := k.Open()
				keep := make([]*liveupdate.Session, n)
				for i := range keep {
					if keep[i], err = d.CreateSession(fmt.Sprint("s-", i)); err != nil {
						b.Fatal(err)
					}
				}
				d.Close()
				b.StartTimer()
				if err := k.Kexec(); err != nil {
					b.Fatal(err)
				}
				d, err = k.Open()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := len(k.State().Incoming); got != n {
					b.Fatalf("%d incoming sessions, want %d", got, n)
				}
				d.Close()
				for _, s := range keep {
					s.Close()
				}
				k.Close()
			}
		})
	}
}

// BenchmarkKexecFiles measures a live update of one session holding n
// one-page memfds.
func BenchmarkKexecFiles(b *testing.B) {
	for _, n := range []int{1000, 4000, 10000} {
		b.Run(fmt.Sprint("files=", n), func(b *testing.B) {
			raiseNoFile(b, uint64(n+1000))
			page := make([]byte, 4096)
			for range b.N {
				b.StopTimer()
				k, err := fake.New()
				if err != nil {
					b.Fatal(err)
				}
				d, _ := k.Open()
				s, err := d.CreateSession("files")
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					fd, err := unix.MemfdCreate("f", unix.MFD_CLOEXEC)
					if err != nil {
						b.Fatal(err)
					}
					copy(page, fmt.Sprint("file-data-", i))
					unix.Write(fd, page)
					if err := s.PreserveFD(fd, uint64(i)); err != nil {
						b.Fatal(err)
					}
					unix.Close(fd)
				}
				d.Close()
				b.StartTimer()
				if err := k.Kexec(); err != nil {
					b.Fatal(err)
				}
				d, err = k.Open()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if st := k.State(); len(st.Incoming) != 1 || len(st.Incoming[0].Files) != n {
					b.Fatalf("incoming state after the update: %d sessions", len(st.Incoming))
				}
				d.Close()
				s.Close()
				k.Close()
			}
		})
	}
}
