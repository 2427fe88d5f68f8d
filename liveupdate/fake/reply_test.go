//go:build linux

package fake_test

import (
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fakewire"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// generous bounds the waits for what the fake does at once when it works;
// a fake that does not do it fails the test there.
const generous = 30 * time.Second

// fullDatagramSocket returns a blocking datagram socket whose queue to its
// peer is full, and the peer: a send on the first blocks until the peer
// reads.
func fullDatagramSocket(t *testing.T) (full, peer int) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for {
		err := unix.Sendmsg(p[0], make([]byte, 1024), nil, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return p[0], p[1]
}

// sendRequest sends one request message on fd, as fakewire.Call does, with
// replyFD attached as its reply socket.
func sendRequest(t *testing.T, fd int, c liveupdate.Command, arg []byte, replyFD int) {
	t.Helper()
	var h [fakewire.RequestHeaderLen]byte
	fakewire.EncodeRequest(&h, c.Request(), 0, len(arg))
	if err := unix.Sendmsg(fd, append(h[:], arg...), unix.UnixRights(replyFD), nil, 0); err != nil {
		t.Fatal(err)
	}
}

func createSessionArg(name string) []byte {
	a := liveupdate.CreateSessionArgs{Size: liveupdate.SizeofCreateSession}
	copy(a.Name[:], name)
	b := make([]byte, liveupdate.SizeofCreateSession)
	a.Encode(b)
	return b
}

// A reply socket that cannot take the reply must not hold the fake: the
// reply is lost, with the new session fd in it, whose session is then
// released (as when the kernel fails to copy the answer out and puts the
// new file), and Close returns.
func TestReplySocketFull(t *testing.T) {
	checkFDs(t)
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	full, peer := fullDatagramSocket(t)
	t.Cleanup(func() {
		// On failure: unblock a fake stuck sending, then stop it.
		if peer >= 0 {
			unix.Close(peer)
		}
		k.Close()
	})
	sendRequest(t, d.Fd(), liveupdate.CmdCreateSession, createSessionArg("unanswered"), full)
	unix.Close(full) // the fake holds the only copy now

	// The fake answers and closes the reply socket, its copy being the
	// last: then a send from the peer is refused.
	deadline := time.Now().Add(generous)
	for {
		err := unix.Sendmsg(peer, []byte{0}, nil, nil, unix.MSG_DONTWAIT)
		if err == unix.ECONNREFUSED {
			break
		}
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake still holds the full reply socket after %v", generous)
		}
		time.Sleep(time.Millisecond)
	}
	// The session was created and, its fd undelivered, released.
	if st := k.State(); len(st.Outgoing) != 0 || !st.DeviceOpen {
		t.Fatalf("state after the lost reply: %+v", st)
	}
	s, err := d.CreateSession("unanswered")
	if err != nil {
		t.Fatalf("create again after the lost reply: %v", err)
	}
	s.Close()

	closed := make(chan error, 1)
	go func() { closed <- k.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(generous):
		t.Errorf("Close has not returned after %v", generous)
		unix.Close(peer)
		peer = -1
		<-closed
	}
	unix.Close(peer)
	peer = -1
}

// A request the fake drops unanswered (here, one with a bad magic) has its
// reply socket shut down, not just closed: a client that keeps another
// copy of the socket's peer end, to use it again, reads end-of-file there
// rather than wait for an answer that never comes.
func TestDroppedRequestShutsReplySocket(t *testing.T) {
	checkFDs(t)
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := p[0], p[1]
	defer unix.Close(mine)
	defer unix.Close(theirs) // kept, as a client reusing the pair would
	tv := unix.NsecToTimeval(generous.Nanoseconds())
	if err := unix.SetsockoptTimeval(mine, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, fakewire.RequestHeaderLen) // magic 0: not a request
	if err := unix.Sendmsg(d.Fd(), msg, unix.UnixRights(theirs), nil, 0); err != nil {
		t.Fatal(err)
	}
	var buf [64]byte
	n, err := unix.Read(mine, buf[:])
	if err != nil || n != 0 {
		t.Fatalf("read of the dropped request's reply socket = %d, %v; want end-of-file (0, nil)", n, err)
	}
	// The device still serves requests.
	s, err := d.CreateSession("after-drop")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
