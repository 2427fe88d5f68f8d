//go:build linux

package liveupdate

import (
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/go-luo/luo/internal/fakehook"
	"golang.org/x/sys/unix"
)

// backend says who answers requests on an fd: the kernel, through ioctl(2),
// or a fake kernel (package fake), through messages on the fd's socket.
// An fd is a fake's only when a fake kernel client is linked
// (fakehook.Installed, set by package fakeclient); without one this package
// never calls getsockname or dials a socket.
type backend uint8

const (
	backendKernel backend = iota
	backendFake
)

// sysIoctl issues req on fd with the size bytes at arg as its argument.
// The kernel path is one ioctl(2) and allocates nothing; the pointer is
// converted in the call expression so the argument stays alive and in
// place across the syscall.
func sysIoctl(b backend, fd int, req uint32, arg unsafe.Pointer, size uintptr) error {
	if b == backendFake {
		return fakeIoctl(fd, req, unsafe.Slice((*byte)(arg), size))
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// fakeIoctl sends a request to a fake kernel. The client is an interface,
// so escape analysis cannot see what it keeps: it is given a copy, and the
// caller's argument stays on the caller's stack on the kernel path.
func fakeIoctl(fd int, req uint32, arg []byte) error {
	c := fakehook.Installed()
	if c == nil {
		return unix.ENOTTY // unreachable: only an installed client makes fake fds
	}
	buf := make([]byte, len(arg))
	copy(buf, arg)
	err := c.Call(fd, req, buf, Command(req&0xff) == CmdPreserveFD)
	copy(arg, buf)
	return err
}

// sysOpen opens the device node at path. When a fake kernel client is
// linked, a path naming a unix socket (open(2) fails with ENXIO) is a fake
// kernel's device (see fake.Kernel.Listen) and is connected to.
func sysOpen(path string) (int, backend, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == unix.ENXIO {
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			c := fakehook.Installed()
			if c == nil {
				return -1, 0, noFakeClientError{}
			}
			fd, err := c.Dial(path)
			return fd, backendFake, err
		}
	}
	return fd, backendKernel, err
}

// noFakeClientError is the error of opening a fake kernel's device socket
// in a binary that links no fake kernel client. It matches ENXIO, open(2)'s
// answer for a socket.
type noFakeClientError struct{}

func (noFakeClientError) Error() string {
	return "a socket, not a device; to reach a fake kernel's socket, import github.com/go-luo/luo/liveupdate/fakeclient"
}
func (noFakeClientError) Is(target error) bool { return target == unix.ENXIO }

func sysClose(fd int) error { return unix.Close(fd) }

func sysDup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// sysClassify tells whether fd is a LUO session, of the kernel or of a
// fake, and the name it carries in its file name or address. A kernel
// session costs one readlink; getsockname is called only on a socket, and
// only when a fake kernel client is linked.
func sysClassify(fd int) (b backend, name string, err error) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		if _, e := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); e != nil {
			return 0, "", e // not an open fd: EBADF, not readlink's ENOENT
		}
		// Without /proc, ask the fd itself: a fake's address, or the
		// kernel's GET_NAME.
		if c := fakehook.Installed(); c != nil && isSocket(fd) {
			return classifyFake(c, fd, "a socket")
		}
		if name, ok := getNameIoctl(fd); ok {
			return backendKernel, name, nil
		}
		return 0, "", err
	}
	if name, ok := sessionNameFromLink(link); ok {
		return backendKernel, name, nil
	}
	if strings.HasPrefix(link, "socket:") {
		if c := fakehook.Installed(); c != nil {
			return classifyFake(c, fd, link)
		}
		// A program whose LUO ioctls a supervisor serves (luoemu)
		// holds sockets for sessions: GET_NAME tells. On a kernel, a
		// socket answers it ENOTTY.
		if name, ok := getNameIoctl(fd); ok {
			return backendKernel, name, nil
		}
	}
	return 0, "", &notSessionError{link}
}

// getNameIoctl asks fd for its session name with GET_NAME.
func getNameIoctl(fd int) (string, bool) {
	var a GetNameArgs
	a.Size = SizeofGetName
	if sysIoctl(backendKernel, fd, CmdGetName.Request(), unsafe.Pointer(&a), SizeofGetName) != nil {
		return "", false
	}
	name, _ := NameFromBytes(&a.Name)
	return name, true
}

// classifyFake asks c whether the socket fd is a fake kernel's session.
func classifyFake(c fakehook.Client, fd int, what string) (backend, string, error) {
	session, name, ok := c.Peer(fd)
	switch {
	case !ok:
		return 0, "", &notSessionError{what}
	case !session:
		return 0, "", &notSessionError{"a fake kernel's device fd"}
	}
	return backendFake, name, nil
}

func isSocket(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

// sysDeviceBackend tells a fake kernel's device from the kernel's: the
// kernel's is a misc character device (kernel/liveupdate/luo_core.c
// registers "liveupdate" with MISC_DYNAMIC_MINOR, so major 10), a fake's a
// socket bound to a fake device's address (a socket pair's user end, or a
// connection a fake's Listen socket accepted), recognised only when a fake
// kernel client is linked. Anything else, another socket above all, is
// refused before any request is written to it. The kernel's device costs
// one fstat.
func sysDeviceBackend(fd int) (backend, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	rdev := uint64(st.Rdev) // uint32 on some architectures
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(rdev) == miscMajor:
		return backendKernel, nil
	case st.Mode&unix.S_IFMT == unix.S_IFSOCK:
		c := fakehook.Installed()
		if c == nil {
			return 0, &notDeviceError{"a socket, and no fake kernel client is linked"}
		}
		session, _, ok := c.Peer(fd)
		switch {
		case ok && session:
			return 0, &notDeviceError{"a fake kernel's session fd"}
		case ok:
			return backendFake, nil
		}
		return 0, &notDeviceError{"a socket that is not a fake kernel's device"}
	case st.Mode&unix.S_IFMT == unix.S_IFCHR:
		return 0, &notDeviceError{"character device " + strconv.Itoa(int(unix.Major(rdev))) + ":" + strconv.Itoa(int(unix.Minor(rdev))) + ", not a misc device"}
	}
	return 0, &notDeviceError{"not a character device"}
}

// miscMajor is MISC_MAJOR (include/uapi/linux/major.h).
const miscMajor = 10

type notDeviceError struct{ what string }

func (e *notDeviceError) Error() string { return ErrNotDevice.Error() + " (it is " + e.what + ")" }

// Is makes a notDeviceError match ErrNotDevice and ENOTTY, the kernel's
// answer to a LUO ioctl on any other file.
func (e *notDeviceError) Is(target error) bool {
	return target == ErrNotDevice || target == unix.ENOTTY
}

type notSessionError struct{ link string }

func (e *notSessionError) Error() string { return ErrNotSession.Error() + " (it is " + e.link + ")" }
func (e *notSessionError) Is(target error) bool {
	return target == ErrNotSession || target == unix.EINVAL
}

func newFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

// fdOf returns the descriptor of f without changing its blocking mode.
func fdOf(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := sc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}
