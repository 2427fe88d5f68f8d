//go:build linux

package fake_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// This file is one whole example (go doc and pkg.go.dev show it entire):
// the agent under test and its test on the fake.

// counterAgent is a small live-update agent: it keeps a counter in a memfd
// across updates. It knows nothing of the fake: it takes a
// *liveupdate.Device, which in production comes from liveupdate.Open.
type counterAgent struct{ session *liveupdate.Session }

// before preserves the counter; the session must stay open until the kexec.
func (a *counterAgent) before(dev *liveupdate.Device, n int) error {
	s, err := dev.CreateSession("counter")
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("counter", unix.MFD_CLOEXEC)
	if err != nil {
		s.Close()
		return err
	}
	m := os.NewFile(uintptr(fd), "counter")
	defer m.Close()
	if _, err := fmt.Fprintf(m, "%d", n); err != nil {
		s.Close()
		return err
	}
	if err := s.Preserve(m, 1); err != nil {
		s.Close()
		return err
	}
	a.session = s
	return nil
}

// after reads the counter back and finishes the session.
func (a *counterAgent) after(dev *liveupdate.Device) (int, error) {
	s, err := dev.RetrieveSession("counter")
	if err != nil {
		return 0, err
	}
	defer s.Close()
	f, err := s.Retrieve(1)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	f.Seek(0, io.SeekStart)
	var n int
	if _, err := fmt.Fscan(f, &n); err != nil {
		return 0, err
	}
	return n, s.Finish()
}

// A test of an agent against the fake: run the first stage, kexec, run the
// second stage, and check what the agent got back. In a _test.go file the
// log.Fatal calls would be t.Fatal.
func Example_agentTest() {
	k, err := fake.New()
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()

	dev, err := k.Open()
	if err != nil {
		log.Fatal(err)
	}
	agent := &counterAgent{}
	if err := agent.before(dev, 41); err != nil {
		log.Fatal(err)
	}
	dev.Close()
	fmt.Println("preserved:", k.State().Outgoing[0].Files[0].Token)

	if err := k.Kexec(); err != nil {
		log.Fatal(err)
	}
	agent.session.Close() // the old kernel's fd

	dev, err = k.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	n, err := (&counterAgent{}).after(dev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("counter:", n+1)
	fmt.Println("sessions left:", len(k.State().Incoming))
	// Output:
	// preserved: 1
	// counter: 42
	// sessions left: 0
}
