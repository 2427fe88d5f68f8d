//go:build linux

package liveupdate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// NewDevice takes the kernel's device or a fake's, and refuses any other
// fd without writing to it: a socket passed by a service manager gets no
// request frame.
func TestNewDeviceRecognisesOnlyDevices(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	reg, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	null, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("not-a-device")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for what, fd := range map[string]int{
		"a socket pair's end":     sp[0],
		"a regular file":          int(reg.Fd()),
		"/dev/null":               int(null.Fd()),
		"a fake kernel's session": s.Fd(),
	} {
		w, err := liveupdate.NewDevice(fd)
		if err == nil {
			w.Close()
		}
		if !errors.Is(err, liveupdate.ErrNotDevice) || !errors.Is(err, unix.ENOTTY) {
			t.Errorf("NewDevice(%s): %v, want ErrNotDevice", what, err)
		}
	}
	var buf [64]byte
	if n, _, err := unix.Recvfrom(sp[1], buf[:], unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("the socket's peer received %d bytes (%v): NewDevice wrote to it", n, err)
	}
	w, err := liveupdate.NewDevice(d.Fd())
	if err != nil {
		t.Fatalf("NewDevice of a fake's device: %v", err)
	}
	w.Close()
}
