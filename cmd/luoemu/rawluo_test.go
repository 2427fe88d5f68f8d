//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// The helpers here issue LUO's ioctls as a C program would, with raw
// addresses, so that the tests can hand luoemu bad pointers.

// luoReq is the request number of c: _IO(0xBA, c), which has no size or
// direction bits on the architectures luoemu runs on.
func luoReq(c liveupdate.Command) uintptr {
	return uintptr(liveupdate.IoctlType)<<8 | uintptr(c)
}

// ioctlAddr is ioctl(fd, req, addr) and its errno (0 on success).
func ioctlAddr(fd int, c liveupdate.Command, addr uintptr) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), luoReq(c), addr)
	return e
}

// ioctlBuf is ioctl(fd, req, &buf[0]) and its errno.
func ioctlBuf(fd int, c liveupdate.Command, buf []byte) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), luoReq(c), uintptr(unsafe.Pointer(&buf[0])))
	return e
}

// sessionArg is struct liveupdate_ioctl_create_session (and retrieve's):
// u32 size, s32 fd, u8 name[64].
func sessionArg(name string) []byte {
	b := make([]byte, 72)
	binary.NativeEndian.PutUint32(b, 72)
	copy(b[8:], name)
	return b
}

// createSession creates the session name on the device dev and returns
// its fd.
func createSession(dev int, name string) (int, error) {
	b := sessionArg(name)
	if e := ioctlBuf(dev, liveupdate.CmdCreateSession, b); e != 0 {
		return -1, fmt.Errorf("create session %q: %w", name, e)
	}
	return int(int32(binary.NativeEndian.Uint32(b[4:]))), nil
}

// preserveFD preserves fd in the session sess under token.
func preserveFD(sess, fd int, token uint64) error {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b, 16)
	binary.NativeEndian.PutUint32(b[4:], uint32(fd))
	binary.NativeEndian.PutUint64(b[8:], token)
	if e := ioctlBuf(sess, liveupdate.CmdPreserveFD, b); e != 0 {
		return fmt.Errorf("preserve fd %d: %w", fd, e)
	}
	return nil
}

// sessionName is the name GET_NAME gives for the session sess.
func sessionName(sess int) (string, error) {
	b := make([]byte, 72)
	binary.NativeEndian.PutUint32(b, 72)
	if e := ioctlBuf(sess, liveupdate.CmdGetName, b); e != 0 {
		return "", fmt.Errorf("get name: %w", e)
	}
	name := b[8:]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	return string(name), nil
}

// errnoName is e's name ("EFAULT"), "0" for none.
func errnoName(e error) string {
	if e == nil {
		return "0"
	}
	if errno, ok := e.(unix.Errno); ok {
		if errno == 0 {
			return "0"
		}
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	return e.Error()
}

// pages maps n zeroed read-write pages and unmaps the last unmapped of
// them, so that the memory ends in a hole; it returns the mapping's
// first address and its mapped part.
func pages(n, unmapped int) (uintptr, []byte, error) {
	ps := unix.Getpagesize()
	m, err := unix.Mmap(-1, 0, n*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, nil, err
	}
	base := uintptr(unsafe.Pointer(&m[0]))
	if unmapped > 0 {
		hole := m[(n-unmapped)*ps:]
		if _, _, e := unix.Syscall(unix.SYS_MUNMAP, uintptr(unsafe.Pointer(&hole[0])), uintptr(len(hole)), 0); e != 0 {
			return 0, nil, e
		}
	}
	return base, m[:(n-unmapped)*ps], nil
}
