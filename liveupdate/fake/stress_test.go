//go:build linux

package fake_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// TestStress runs agents at once on one kernel: some create outgoing
// sessions, preserve memfds from a shared pool (so they collide) and close
// sessions; others retrieve incoming sessions, their files, finish and
// close. Every answer must be one the kernel could give, and at the end the
// fake's bookkeeping must match what the agents hold.
func TestStress(t *testing.T) {
	checkFDs(t)
	const (
		incoming = 40
		workers  = 8
		rounds   = 60
		pool     = 16
	)
	k := faketest.New(t, fake.WithMaxSessions(64), fake.WithMaxFiles(8))

	// The previous boot: sessions in-0..in-39 with two memfds each.
	d, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	var prev []*liveupdate.Session
	for i := range incoming {
		s, err := d.CreateSession(fmt.Sprintf("in-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		for tok := range uint64(2) {
			m := faketest.Memfd(t, fmt.Sprintf("%d/%d", i, tok))
			if err := s.Preserve(m, tok); err != nil {
				t.Fatal(err)
			}
			m.Close()
		}
		prev = append(prev, s)
	}
	d.Close()
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	for _, s := range prev {
		s.Close()
	}

	d, err = k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	memfds := make([]*os.File, pool)
	for i := range memfds {
		memfds[i] = faketest.Memfd(t, "pool")
		defer memfds[i].Close()
	}

	var (
		mu      sync.Mutex
		held    = map[string]*liveupdate.Session{} // outgoing sessions still open
		claimed = map[int]bool{}                   // incoming sessions retrieved
		wg      sync.WaitGroup
	)
	expect := func(err error, ok ...unix.Errno) {
		if err == nil {
			return
		}
		for _, e := range ok {
			if errors.Is(err, e) {
				return
			}
		}
		t.Errorf("unexpected error: %v", err)
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				switch r.IntN(5) {
				case 0, 1: // create and preserve
					name := fmt.Sprintf("out-%d", r.IntN(24))
					s, err := d.CreateSession(name)
					expect(err, unix.EEXIST, unix.ENOSPC)
					if err != nil {
						continue
					}
					for range r.IntN(4) {
						err := s.Preserve(memfds[r.IntN(pool)], uint64(r.IntN(6)))
						expect(err, unix.EEXIST, unix.EBUSY, unix.ENOSPC)
					}
					mu.Lock()
					held[name] = s
					mu.Unlock()
				case 2: // close an outgoing session
					mu.Lock()
					var s *liveupdate.Session
					var name string
					for name, s = range held {
						delete(held, name)
						break
					}
					mu.Unlock()
					if s != nil {
						if err := s.Close(); err != nil {
							t.Error(err)
						}
					}
				case 3, 4: // claim an incoming session
					i := r.IntN(incoming)
					s, err := d.RetrieveSession(fmt.Sprintf("in-%d", i))
					expect(err, unix.EINVAL, unix.ENOENT)
					if err != nil {
						continue
					}
					mu.Lock()
					if claimed[i] {
						t.Errorf("in-%d retrieved twice", i)
					}
					claimed[i] = true
					mu.Unlock()
					f, err := s.Retrieve(uint64(r.IntN(2)))
					if err != nil {
						t.Error(err)
					} else {
						f.Close()
					}
					if r.IntN(2) == 0 {
						if err := s.Finish(); err != nil {
							t.Error(err)
						}
					}
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()

	if err := k.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	st := k.State()
	var got, want []string
	for _, s := range st.Outgoing {
		got = append(got, s.Name)
	}
	for name := range held {
		want = append(want, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outgoing sessions %v, agents hold %v", got, want)
	}
	if n := len(st.Incoming); n != incoming-len(claimed) {
		t.Errorf("%d incoming sessions left, want %d", n, incoming-len(claimed))
	}
	preserved := 0
	for _, s := range st.Outgoing {
		preserved += len(s.Files)
	}
	if preserved > pool {
		t.Errorf("%d files preserved from a pool of %d memfds", preserved, pool)
	}
	for _, s := range held {
		s.Close()
	}
	if st := k.State(); len(st.Outgoing) != 0 {
		t.Errorf("after closing every session, %d outgoing remain", len(st.Outgoing))
	}
	if err := k.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}
