//go:build linux

package liveupdate

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"github.com/go-luo/luo/internal/fakewire"
	"golang.org/x/sys/unix"
)

// countFDs returns the number of open file descriptors of this process.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

// fdDelta runs op once to warm up (the runtime opens some fds lazily),
// then n times more, and returns the number of open fds before and after
// those n runs.
func fdDelta(t *testing.T, n int, op func(t *testing.T)) (before, after int) {
	t.Helper()
	op(t)
	before = countFDs(t)
	for range n {
		op(t)
	}
	return before, countFDs(t)
}

// noLeak fails the test if running op changes the number of open fds.
func noLeak(t *testing.T, what string, op func(t *testing.T)) {
	t.Helper()
	if before, after := fdDelta(t, 5, op); after != before {
		t.Errorf("%s: %d open fds before, %d after 5 runs", what, before, after)
	}
}

// openDevNull opens /dev/null as a LUO device: it opens (any node can be
// opened) and answers every LUO request with ENOTTY.
func openDevNull(t *testing.T) *Device {
	t.Helper()
	d, err := Open(os.DevNull)
	if err != nil {
		t.Fatalf("Open(%s): %v", os.DevNull, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// bogusDevice returns a Device whose fd is not open in this process: a
// request on it fails with EBADF.
func bogusDevice(t *testing.T) *Device {
	t.Helper()
	fd := 1 << 20
	var st unix.Stat_t
	for unix.Fstat(fd, &st) == nil {
		fd++
	}
	return newDevice(fd, backendKernel, "bogus")
}

// closedDevice returns a Device on /dev/null that has been closed.
func closedDevice(t *testing.T) *Device {
	t.Helper()
	d, err := Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return d
}

// ioctlErr issues req on fd straight through the syscall and returns its
// errno, or nil.
func ioctlErr(fd int, req uint32) error {
	var arg [SizeofGetName]byte
	binary.NativeEndian.PutUint32(arg[:], SizeofGetName)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&arg[0])))
	if e != 0 {
		return e
	}
	return nil
}

// requireKernelIoctl skips a test that needs the kernel's answer to an
// ioctl it does not know. qemu-user answers such ioctls itself, with
// ENOSYS, without making the syscall.
func requireKernelIoctl(t *testing.T) {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ioctlErr(int(f.Fd()), CmdGetName.Request()); err == unix.ENOSYS {
		t.Skip("ioctls do not reach the kernel here (qemu-user answers ENOSYS)")
	}
}

var abstractSeq atomic.Uint64

// boundSocket returns a SOCK_SEQPACKET unix socket bound to the abstract
// address name (without the leading "@"), closed at the end of the test.
func boundSocket(t *testing.T, name string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		t.Skipf("bind abstract %q: %v", name, err)
	}
	return fd
}

// uniqueName returns an abstract socket name no other test uses.
func uniqueName(prefix string) string {
	return prefix + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(abstractSeq.Add(1), 10)
}

// fakeAddr returns a fake object address no fake kernel is using.
func fakeAddr(session bool, name string) string {
	return fakewire.Addr{ID: rand.Uint64(), Session: session, Name: name}.String()
}

func TestCountFDs(t *testing.T) {
	before := countFDs(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if got := countFDs(t); got != before+2 {
		t.Errorf("after pipe: %d fds, want %d", got, before+2)
	}
	unix.Close(p[0])
	unix.Close(p[1])
	if got := countFDs(t); got != before {
		t.Errorf("after close: %d fds, want %d", got, before)
	}
}

func TestErrorPathsLeakNoFD(t *testing.T) {
	null := openDevNull(t)
	closed := closedDevice(t)
	bogus := bogusDevice(t)
	nullFile, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer nullFile.Close()
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	notFake := boundSocket(t, uniqueName("luo-test-leak-"))
	// What a request that gets through gives on each (ENOTTY and EBADF on
	// Linux; ENOSYS under qemu-user).
	nullErr := ioctlErr(null.Fd(), CmdCreateSession.Request())
	bogusErr := ioctlErr(bogus.Fd(), CmdCreateSession.Request())
	if nullErr == nil || bogusErr == nil {
		t.Fatalf("ioctl on /dev/null: %v; on a bad fd: %v", nullErr, bogusErr)
	}
	fakeDev := boundSocket(t, fakeAddr(false, ""))

	wantErr := func(t *testing.T, err, target error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("error = %v, want %v", err, target)
		}
	}
	for _, tc := range []struct {
		name string
		op   func(t *testing.T)
	}{
		{"CreateSession bad name on /dev/null", func(t *testing.T) {
			_, err := null.CreateSession("")
			wantErr(t, err, ErrInvalidName)
		}},
		{"RetrieveSession bad name on /dev/null", func(t *testing.T) {
			_, err := null.RetrieveSession("a\x00b")
			wantErr(t, err, ErrInvalidName)
		}},
		{"CreateSession ENOTTY on /dev/null", func(t *testing.T) {
			_, err := null.CreateSession("fine")
			wantErr(t, err, nullErr)
		}},
		{"RetrieveSession ENOTTY on /dev/null", func(t *testing.T) {
			_, err := null.RetrieveSession("fine")
			wantErr(t, err, nullErr)
		}},
		{"CreateSession on a closed device", func(t *testing.T) {
			_, err := closed.CreateSession("fine")
			wantErr(t, err, ErrClosed)
		}},
		{"CreateSession on a bad fd", func(t *testing.T) {
			_, err := bogus.CreateSession("fine")
			wantErr(t, err, bogusErr)
		}},
		{"Open of a missing path", func(t *testing.T) {
			_, err := Open("/nonexistent/liveupdate")
			wantErr(t, err, ErrNotSupported)
		}},
		{"Open of a directory", func(t *testing.T) {
			_, err := Open("/")
			wantErr(t, err, syscall.EISDIR)
		}},
		{"NewSession of /dev/null", func(t *testing.T) {
			_, err := NewSession(int(nullFile.Fd()))
			wantErr(t, err, ErrNotSession)
		}},
		{"NewSession of a pipe", func(t *testing.T) {
			_, err := NewSession(pipe[0])
			wantErr(t, err, ErrNotSession)
		}},
		{"NewSession of an abstract socket", func(t *testing.T) {
			_, err := NewSession(notFake)
			wantErr(t, err, ErrNotSession)
		}},
		{"NewSession of a fake device address", func(t *testing.T) {
			_, err := NewSession(fakeDev)
			wantErr(t, err, ErrNotSession)
		}},
		{"NewSession of a closed fd", func(t *testing.T) {
			_, err := NewSession(bogus.fd)
			wantErr(t, err, syscall.EBADF)
		}},
		{"IsSession of a pipe", func(t *testing.T) {
			if IsSession(pipe[1]) {
				t.Fatal("a pipe is a session")
			}
		}},
		{"RawIoctl ENOTTY", func(t *testing.T) {
			arg := make([]byte, SizeofGetName)
			wantErr(t, null.RawIoctl(CmdGetName.Request(), arg), nullErr)
		}},
		{"RawIoctl on a closed device", func(t *testing.T) {
			wantErr(t, closed.RawIoctl(CmdCreateSession.Request(), make([]byte, 72)), ErrClosed)
		}},
		{"RawIoctl on a bad fd", func(t *testing.T) {
			wantErr(t, bogus.RawIoctl(CmdCreateSession.Request(), make([]byte, 72)), bogusErr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { noLeak(t, tc.name, tc.op) })
	}
}

// TestFDDeltaDetects makes sure the leak check can fail: an op that leaks
// an fd each run must show.
func TestFDDeltaDetects(t *testing.T) {
	var leaked []int
	defer func() {
		for _, fd := range leaked {
			unix.Close(fd)
		}
	}()
	before, after := fdDelta(t, 5, func(t *testing.T) {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		leaked = append(leaked, fd)
	})
	if after != before+5 {
		t.Errorf("5 leaked fds: %d before, %d after", before, after)
	}
}
