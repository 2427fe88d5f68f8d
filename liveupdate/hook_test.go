//go:build linux

package liveupdate

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fakehook"
	"golang.org/x/sys/unix"
)

// TestKernelAgentLinksNoFake lists the packages a binary importing only
// package liveupdate links (testdata/kernelagent) and fails if the fake
// kernel, its wire client or its wire format is among them.
func TestKernelAgentLinksNoFake(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "list", "-deps", "./testdata/kernelagent")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=")
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/go-luo/luo/liveupdate") {
		t.Fatalf("go list -deps does not list liveupdate, the package under test: %q", deps)
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/go-luo/luo/") &&
			p != "github.com/go-luo/luo/liveupdate" && p != "github.com/go-luo/luo/internal/fakehook" &&
			p != "github.com/go-luo/luo/liveupdate/testdata/kernelagent" {
			t.Errorf("a binary importing only liveupdate links %s", p)
		}
	}
}

// countingClient wraps the installed fake kernel client and records the fds
// Peer and Call were asked about and the paths Dial was.
type countingClient struct {
	fakehook.Client
	mu    sync.Mutex
	fds   []int
	paths []string
}

func (c *countingClient) Peer(fd int) (bool, string, bool) {
	c.mu.Lock()
	c.fds = append(c.fds, fd)
	c.mu.Unlock()
	return c.Client.Peer(fd)
}

func (c *countingClient) Call(fd int, req uint32, arg []byte, attach bool) error {
	c.mu.Lock()
	c.fds = append(c.fds, fd)
	c.mu.Unlock()
	return c.Client.Call(fd, req, arg, attach)
}

func (c *countingClient) Dial(path string) (int, error) {
	c.mu.Lock()
	c.paths = append(c.paths, path)
	c.mu.Unlock()
	return c.Client.Dial(path)
}

func (c *countingClient) asked(fd int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.fds, fd)
}

// withClient installs c for the test, restoring the previous client after.
func withClient(t *testing.T, c fakehook.Client) {
	prev := fakehook.Installed()
	fakehook.Install(c)
	t.Cleanup(func() { fakehook.Install(prev) })
}

// TestKernelPathsAskNoFakeClient shows that with a fake kernel client
// linked, only sockets are put to it: classifying a file that is not a
// socket, opening a device node and wrapping a character device never
// reach the client (so no getsockname and no dial). A socket does, as the
// positive control.
func TestKernelPathsAskNoFakeClient(t *testing.T) {
	prev := fakehook.Installed()
	if prev == nil {
		t.Skip("no fake kernel client linked into this test binary")
	}
	c := &countingClient{Client: prev}
	withClient(t, c)

	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for _, fd := range []int{int(null.Fd()), p[0]} {
		if IsSession(fd) {
			t.Errorf("IsSession(%d) = true", fd)
		}
		if _, err := NewSession(fd); !errors.Is(err, ErrNotSession) {
			t.Errorf("NewSession(%d) = %v, want ErrNotSession", fd, err)
		}
		if c.asked(fd) {
			t.Errorf("classifying fd %d, not a socket, asked the fake client", fd)
		}
	}
	d, err := Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = NewDevice(int(null.Fd()))
	if !errors.Is(err, ErrNotDevice) {
		t.Errorf("NewDevice(/dev/null) = %v, %v; want ErrNotDevice", d, err)
	}
	if c.asked(int(null.Fd())) || len(c.paths) != 0 {
		t.Errorf("Open and NewDevice of a device node asked the fake client: fds %v, paths %v", c.fds, c.paths)
	}

	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	if IsSession(sp[0]) || !c.asked(sp[0]) {
		t.Errorf("a plain socket: IsSession true, or the client was not asked (fds %v)", c.fds)
	}
}

// TestNoFakeClient shows what a binary without a fake kernel client sees:
// a fake session's fd is not a session, a fake device's fd is not a
// device, and a fake's device socket path fails to open with ENXIO, its
// error saying what to import.
func TestNoFakeClient(t *testing.T) {
	withClient(t, nil)
	sess := boundSocket(t, fakeAddr(true, "no client"))
	if IsSession(sess) {
		t.Error("IsSession(fake session fd) = true without a fake client")
	}
	if _, err := NewSession(sess); !errors.Is(err, ErrNotSession) {
		t.Errorf("NewSession(fake session fd) = %v, want ErrNotSession", err)
	}
	dev := boundSocket(t, fakeAddr(false, ""))
	if _, err := NewDevice(dev); !errors.Is(err, ErrNotDevice) || !strings.Contains(err.Error(), "no fake kernel client") {
		t.Errorf("NewDevice(fake device fd) = %v, want ErrNotDevice saying no client is linked", err)
	}

	path := filepath.Join(t.TempDir(), "fake.sock")
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if !errors.Is(err, syscall.ENXIO) || !strings.Contains(err.Error(), "liveupdate/fakeclient") {
		t.Errorf("Open(socket path) = %v, want ENXIO naming fakeclient", err)
	}
}
