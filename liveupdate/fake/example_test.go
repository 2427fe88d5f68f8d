//go:build linux

package fake_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

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

// Linux 7.2's duplicate-create bug, as an agent's test meets it: with 51
// outgoing sessions, a create of a name in use fails with EEXIST but leaves
// an empty block, and the next kernel panics at boot. The machine then
// runs nothing until a cold boot, which hands nothing over.
func ExampleKernel_Reboot() {
	k, err := fake.New()
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		log.Fatal(err)
	}
	for i := range 51 {
		s, err := dev.CreateSession(fmt.Sprint("vm-", i))
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
	}
	_, err = dev.CreateSession("vm-0")
	fmt.Println("duplicate:", errors.Is(err, unix.EEXIST), "blocks:", k.State().SessionBlocks)
	dev.Close()

	var panicked *fake.PanicError
	err = k.Kexec()
	fmt.Println("kexec panics the next kernel:", errors.As(err, &panicked))
	_, err = k.Open()
	fmt.Println("open fails:", errors.As(err, &panicked))

	if err := k.Reboot(); err != nil {
		log.Fatal(err)
	}
	dev, err = k.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	_, err = dev.RetrieveSession("vm-0")
	fmt.Println("after the cold boot:", errors.Is(err, unix.ENOENT))
	// Output:
	// duplicate: true blocks: 2
	// kexec panics the next kernel: true
	// open fails: true
	// after the cold boot: true
}
