//go:build linux

package fakewire

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecvmsgEOFRace races a peer that sends one message and closes
// against a reader polling without waiting. A bare recvmsg can report end
// of file with the message still queued (the kernel checks the queue,
// then, apart, the shutdown); Recvmsg must always return the message
// first. The test counts how often the bare read lost the race, which
// shows that the race it guards against happened in this run.
func TestRecvmsgEOFRace(t *testing.T) {
	const rounds = 3000
	var bareLost, bareRounds int
	for i := range rounds {
		bare := i%2 == 0
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			_, err := unix.Write(pair[1], []byte{1})
			unix.Close(pair[1])
			sent <- err
		}()
		var buf [8]byte
		var oob Control
		read := Recvmsg
		if bare {
			read = recvmsg
			bareRounds++
		}
		var n int
		for {
			n, _, _, err = read(pair[0], buf[:], oob.Bytes(), 0)
			if err != unix.EAGAIN {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		switch {
		case n == 1:
		case bare:
			bareLost++
			// The message is still there: the next read has it.
			if n, _, _, err := recvmsg(pair[0], buf[:], oob.Bytes(), 0); n != 1 || err != nil {
				t.Fatalf("a second bare read after end of file: %d bytes, %v", n, err)
			}
		default:
			unix.Close(pair[0])
			t.Fatalf("round %d: Recvmsg returned end of file before the message sent ahead of it", i)
		}
		unix.Close(pair[0])
	}
	t.Logf("a bare recvmsg read end of file before the message in %d of %d rounds", bareLost, bareRounds)
}
