//go:build linux

package conformance_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/conformance"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// setSplitEnv sets the three variables of a split run.
func setSplitEnv(t *testing.T, boot, run, hold string) {
	t.Setenv(conformance.BootEnv, boot)
	t.Setenv(conformance.RunEnv, run)
	t.Setenv(conformance.HoldEnv, hold)
}

func TestSplitFromEnvUnset(t *testing.T) {
	setSplitEnv(t, "", "", "")
	s, err := conformance.SplitFromEnv()
	if s != nil || err != nil {
		t.Fatalf("SplitFromEnv without the environment = %v, %v; want nil, nil", s, err)
	}
}

func TestSplitFromEnv(t *testing.T) {
	setSplitEnv(t, "1", "run-7_A", "/run/rig.sock")
	s, err := conformance.SplitFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if s.Boot != 1 || s.RunID != "run-7_A" || s.Hold == nil {
		t.Fatalf("SplitFromEnv = %+v", s)
	}
}

func TestSplitFromEnvErrors(t *testing.T) {
	last := strconv.Itoa(conformance.SplitBoots() - 1)
	past := strconv.Itoa(conformance.SplitBoots())
	for _, c := range []struct{ boot, run, hold, want string }{
		{"", "r", "/s", conformance.BootEnv + " is not set"},
		{"0", "", "/s", conformance.RunEnv + " is not set"},
		{"0", "r", "", conformance.HoldEnv + " is not set"},
		{"x", "r", "/s", conformance.BootEnv + `="x" is not a boot number`},
		{"-1", "r", "/s", conformance.BootEnv + "=-1: boot -1: a split run has boots 0 to " + last},
		{past, "r", "/s", conformance.BootEnv + "=" + past + ": boot " + past},
		{"0", "a b", "/s", conformance.RunEnv + `: run ID "a b": byte 1`},
		{"0", strings.Repeat("r", 17), "/s", "want 1 to 16 bytes"},
		{"0", "r", "/" + strings.Repeat("s", 107), conformance.HoldEnv + " is 108 bytes long"},
	} {
		setSplitEnv(t, c.boot, c.run, c.hold)
		s, err := conformance.SplitFromEnv()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("boot %q run %q hold %q: SplitFromEnv = %v, %v; want an error containing %q", c.boot, c.run, c.hold, s, err, c.want)
		}
	}
}

// message is one message of the hold protocol as the rig received it.
type message struct {
	b   byte
	fds int
}

// rig serves one connection of the hold protocol on a new socket: it
// receives messages until HoldEnd, then answers answer (none when 0). It
// returns the socket's path and a function that waits for the rig to end
// and returns the messages and the fds it received, still open.
func rig(t *testing.T, answer byte) (path string, wait func() ([]message, []int, error)) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "hold.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		msgs []message
		fds  []int
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		var g got
		defer func() { ch <- g }()
		c, err := l.AcceptUnix()
		l.Close()
		if err != nil {
			g.err = err
			return
		}
		defer c.Close()
		for {
			b := make([]byte, 1)
			oob := make([]byte, unix.CmsgSpace(4*253))
			n, oobn, flags, _, err := c.ReadMsgUnix(b, oob)
			if err != nil {
				g.err = err
				return
			}
			if n != 1 || flags&unix.MSG_CTRUNC != 0 {
				g.err = fmt.Errorf("read %d bytes, flags %#x", n, flags)
				return
			}
			m := message{b: b[0]}
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				g.err = err
				return
			}
			for _, cm := range cms {
				fds, err := unix.ParseUnixRights(&cm)
				if err != nil {
					g.err = err
					return
				}
				m.fds += len(fds)
				g.fds = append(g.fds, fds...)
			}
			g.msgs = append(g.msgs, m)
			if m.b == conformance.HoldEnd {
				break
			}
		}
		if answer != 0 {
			c.Write([]byte{answer})
		}
	}()
	return path, func() ([]message, []int, error) {
		g := <-ch
		return g.msgs, g.fds, g.err
	}
}

// closeAll closes fds.
func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// TestHoldOverSocket hands 300 sessions to a rig: two messages of fds (250
// and 50), the end, the rig's 'K'. The sessions live on in the rig's
// copies after Hold closed its own.
func TestHoldOverSocket(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	const n = 300
	var sessions []*liveupdate.Session
	for i := range n {
		s, err := d.CreateSession("held-" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	path, wait := rig(t, conformance.HoldKept)
	setSplitEnv(t, "0", "hold", path)
	sp, err := conformance.SplitFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Hold(sessions); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	msgs, fds, err := wait()
	defer closeAll(fds)
	if err != nil {
		t.Fatalf("rig: %v", err)
	}
	want := []message{{conformance.HoldFDs, 250}, {conformance.HoldFDs, 50}, {conformance.HoldEnd, 0}}
	if fmt.Sprint(msgs) != fmt.Sprint(want) {
		t.Errorf("the rig received %v, want %v", msgs, want)
	}
	for _, s := range sessions {
		if s.Fd() >= 0 {
			t.Fatalf("Hold left %v open (fd %d)", s, s.Fd())
		}
	}
	for i, fd := range fds {
		if !liveupdate.IsSession(fd) {
			t.Fatalf("fd %d the rig received is not a session", i)
		}
	}
	// The rig's copies keep the sessions: their names are taken.
	for _, i := range []int{0, 299} {
		s, err := d.CreateSession("held-" + strconv.Itoa(i))
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, syscall.EEXIST) {
			t.Errorf("create held-%d after Hold: %v, want EEXIST (the rig holds it)", i, err)
		}
	}
}

// TestHoldNothing sends only the end when no session is kept.
func TestHoldNothing(t *testing.T) {
	path, wait := rig(t, conformance.HoldKept)
	setSplitEnv(t, "0", "hold", path)
	sp, err := conformance.SplitFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Hold(nil); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	msgs, fds, err := wait()
	closeAll(fds)
	if err != nil || len(msgs) != 1 || msgs[0] != (message{conformance.HoldEnd, 0}) {
		t.Errorf("the rig received %v (%v), want only the end", msgs, err)
	}
}

// TestHoldRefused: a rig that answers another byte, or none, or is not
// there, makes Hold fail, and leaves the sessions open.
func TestHoldRefused(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("refused")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		answer byte
		want   string
	}{
		{'X', "answered byte 0x58, want 0x4b ('K')"},
		{0, io.ErrUnexpectedEOF.Error()},
	} {
		path, wait := rig(t, c.answer)
		setSplitEnv(t, "0", "hold", path)
		sp, err := conformance.SplitFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		err = sp.Hold([]*liveupdate.Session{s})
		_, fds, _ := wait()
		closeAll(fds)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rig answering %q: Hold = %v, want an error containing %q", c.answer, err, c.want)
		}
		if s.Fd() < 0 {
			t.Fatalf("a failed Hold closed the session")
		}
	}
	setSplitEnv(t, "0", "hold", filepath.Join(t.TempDir(), "absent.sock"))
	sp, err := conformance.SplitFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Hold([]*liveupdate.Session{s}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Hold to a socket that is not there: %v, want ENOENT", err)
	}
}
