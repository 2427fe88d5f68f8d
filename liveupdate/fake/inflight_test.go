//go:build linux

package fake_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate/fake/faketest"

	"github.com/go-luo/luo/internal/fakewire"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// freezeGate is a pipe handler whose Freeze waits for the test: the Kexec
// holds the kernel's serialize lock meanwhile, and every request that
// needs it waits.
type freezeGate struct {
	pipeHandler
	entered chan struct{}
	release chan struct{}
}

func (h *freezeGate) Compatible() string { return "test-gate-v1" }
func (h *freezeGate) Freeze(f *fake.HandlerFile) error {
	close(h.entered)
	<-h.release
	return h.pipeHandler.Freeze(f)
}

// heldSockets counts the descriptors of this process that refer to one of
// the sockets with these inode numbers.
func heldSockets(t *testing.T, inodes map[uint64]bool) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	n := 0
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || len(link) < len("socket:[]") || link[:8] != "socket:[" {
			continue
		}
		ino, err := strconv.ParseUint(link[8:len(link)-1], 10, 64)
		if err == nil && inodes[ino] {
			n++
		}
	}
	return n
}

// The fake takes at most fake.MaxInFlight requests off one fd at a time;
// the client's further requests wait in the socket (their fds in flight,
// not in the fake's table) until one is answered, as a thread calling the
// kernel's ioctl waits, and are then served.
func TestRequestsInFlightBounded(t *testing.T) {
	t.Run("fd open", func(t *testing.T) { testRequestsInFlight(t, false) })
	// The close's hang-up is read after the queued requests, by the
	// goroutine that answered the last of them: the fd is released,
	// and Close finds nothing left running.
	t.Run("fd closed with requests queued", func(t *testing.T) { testRequestsInFlight(t, true) })
}

func testRequestsInFlight(t *testing.T, closeEarly bool) {
	checkFDs(t)
	gate := &freezeGate{entered: make(chan struct{}), release: make(chan struct{})}
	k := faketest.New(t, fake.WithHandler(gate))
	d := faketest.Open(t, k)
	s, err := d.CreateSession("busy")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	unix.Close(p[1])
	if err := s.PreserveFD(p[0], 1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	kexecDone := make(chan error, 1)
	go func() { kexecDone <- k.Kexec() }()
	released := false
	release := func() {
		if !released {
			released = true
			close(gate.release)
			<-kexecDone
		}
	}
	defer release()
	<-gate.entered

	// Requests that wait for the Kexec, each with its own reply socket.
	const sent = 64
	arg := make([]byte, liveupdate.SizeofGetName)
	(&liveupdate.GetNameArgs{Size: liveupdate.SizeofGetName}).Encode(arg)
	inodes := map[uint64]bool{}
	var mine []int
	defer func() { closeFDs(mine) }()
	for range sent {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Fstat(pair[1], &st)
		inodes[st.Ino] = true
		mine = append(mine, pair[0])
		var h [fakewire.RequestHeaderLen]byte
		fakewire.EncodeRequest(&h, liveupdate.CmdGetName.Request(), 0, len(arg))
		err = unix.Sendmsg(s.Fd(), append(h[:], arg...), unix.UnixRights(pair[1]), nil, unix.MSG_DONTWAIT)
		unix.Close(pair[1])
		if err != nil {
			t.Fatalf("request %d: %v", len(mine), err)
		}
	}

	// The fake takes its bound of them, and no more: the others stay
	// queued on the client's socket. (Seen a hundred times over, the
	// fake having every chance to read on.)
	deadline := time.Now().Add(generous)
	for seen := 0; seen < 100; {
		held := heldSockets(t, inodes)
		if held > fake.MaxInFlight {
			t.Fatalf("the fake took %d requests off one fd (bound %d)", held, fake.MaxInFlight)
		}
		queued, err := unix.IoctlGetInt(s.Fd(), unix.SIOCOUTQ)
		if err != nil {
			t.Fatal(err)
		}
		if held == fake.MaxInFlight && queued > 0 {
			seen++
		} else if time.Now().After(deadline) {
			t.Fatalf("after %v the fake holds %d requests, %d bytes queued", generous, held, queued)
		}
		time.Sleep(100 * time.Microsecond)
	}

	if closeEarly {
		s.Close()
	}
	// When the Kexec ends, every request is answered: the fd is the old
	// kernel's.
	release()
	for i, fd := range mine {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(generous/time.Millisecond)); n != 1 || err != nil {
			t.Fatalf("request %d unanswered (poll %d, %v)", i, n, err)
		}
		var buf [fakewire.ReplyHeaderLen + fakewire.MaxReply]byte
		n, err := unix.Read(fd, buf[:])
		if err != nil {
			t.Fatal(err)
		}
		_, flags, _, err := fakewire.DecodeReply(buf[:n])
		if err != nil || flags&fakewire.ReplyStale == 0 {
			t.Fatalf("request %d: reply %x, %v; want ESTALE", i, buf[:n], err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- k.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(generous):
		t.Fatalf("Close has not returned after %v", generous)
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
