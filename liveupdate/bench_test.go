//go:build linux

package liveupdate

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The typed calls against a real fd that answers every LUO request with
// ENOTTY (/dev/null), beside a raw ioctl(2) of the same request in the
// same run: the cost of the typed layer is what they add to the syscall.
// Run: go test -run '^$' -bench Request -benchmem ./liveupdate/
func BenchmarkRequest(b *testing.B) {
	f, err := os.Open("/dev/null")
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	s := newSession(fd, backendKernel, "bench", Outgoing)
	d := newDevice(fd, backendKernel, "/dev/null")

	b.Run("raw-syscall/finish", func(b *testing.B) {
		a := FinishArgs{Size: SizeofFinish}
		req := uintptr(CmdFinish.Request())
		for b.Loop() {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&a)))
			if e != unix.ENOTTY {
				b.Fatal(e)
			}
		}
	})
	b.Run("typed/Session.RawIoctl", func(b *testing.B) {
		var arg [SizeofFinish]byte
		req := CmdFinish.Request()
		for b.Loop() {
			if err := s.RawIoctl(req, arg[:]); err != unix.ENOTTY {
				b.Fatal(err)
			}
		}
	})
	b.Run("typed/Session.Finish", func(b *testing.B) {
		for b.Loop() {
			if err := s.Finish(); err == nil {
				b.Fatal("no error")
			}
		}
	})
	b.Run("typed/Session.PreserveFD", func(b *testing.B) {
		for b.Loop() {
			if err := s.PreserveFD(fd, 1); err == nil {
				b.Fatal("no error")
			}
		}
	})
	b.Run("raw-syscall/create-session", func(b *testing.B) {
		a := CreateSessionArgs{Size: SizeofCreateSession}
		PutName(&a.Name, "bench")
		req := uintptr(CmdCreateSession.Request())
		for b.Loop() {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&a)))
			if e != unix.ENOTTY {
				b.Fatal(e)
			}
		}
	})
	b.Run("typed/Device.CreateSession", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.CreateSession("bench"); err == nil {
				b.Fatal("no error")
			}
		}
	})
}

// The request path of a successful call allocates nothing: the argument
// stays on the stack across the syscall.
func TestRequestPathAllocatesNothing(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := newSession(int(f.Fd()), backendKernel, "allocs", Outgoing)
	n := testing.AllocsPerRun(100, func() {
		a := FinishArgs{Size: SizeofFinish}
		s.ioctl(CmdFinish, unsafe.Pointer(&a), SizeofFinish)
	})
	if n != 0 {
		t.Errorf("the request path allocates %v times per call", n)
	}
	var arg [SizeofGetName]byte
	n = testing.AllocsPerRun(100, func() { s.RawIoctl(CmdGetName.Request(), arg[:]) })
	if n != 0 {
		t.Errorf("RawIoctl allocates %v times per call", n)
	}
}
