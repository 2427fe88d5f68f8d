//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp user-notification ABI (include/uapi/linux/seccomp.h).
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

type seccompResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

type seccompAddFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// _IOW('!', nr, size) on these architectures (asm-generic's encoding:
// _IOC_WRITE = 1 at bit 30, the size from bit 16).
func seccompIOW(nr, size uintptr) uintptr { return 1<<30 | size<<16 | '!'<<8 | nr }

var (
	ioctlNotifRecv    = uintptr(unix.SECCOMP_IOCTL_NOTIF_RECV)
	ioctlNotifSend    = uintptr(unix.SECCOMP_IOCTL_NOTIF_SEND)
	ioctlNotifIDValid = seccompIOW(2, 8)
	ioctlNotifAddFD   = seccompIOW(3, unsafe.Sizeof(seccompAddFD{}))
)

// listener is the fd of a seccomp filter's notifications.
type listener int

// recv waits for the next notification.
func (l listener) recv(n *seccompNotif) error {
	*n = seccompNotif{} // the kernel wants it zeroed
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(l), ioctlNotifRecv, uintptr(unsafe.Pointer(n)))
		if e != unix.EINTR {
			return errnoErr(e)
		}
	}
}

// send answers notification id.
func (l listener) send(r *seccompResp) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(l), ioctlNotifSend, uintptr(unsafe.Pointer(r)))
	return errnoErr(e)
}

// valid tells whether notification id still waits for an answer: its
// task has not died, nor been interrupted out of the call. Anything read
// from the task's memory or fd table before a true answer is the task's.
func (l listener) valid(id uint64) bool {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(l), ioctlNotifIDValid, uintptr(unsafe.Pointer(&id)))
	return e == 0
}

// addFD installs fd in the notifying task with the given O_CLOEXEC flag
// and returns its number there. With send it also answers the
// notification, atomically, with that number.
func (l listener) addFD(id uint64, fd int, cloexec, send bool) (int, error) {
	a := seccompAddFD{ID: id, SrcFD: uint32(fd)}
	if cloexec {
		a.NewFDFlags = unix.O_CLOEXEC
	}
	if send {
		a.Flags |= unix.SECCOMP_ADDFD_FLAG_SEND
	}
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(l), ioctlNotifAddFD, uintptr(unsafe.Pointer(&a)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// The main goroutine keeps the main thread, so that the goroutine of
// startFiltered never runs on it: a locked goroutine that ends on the main
// thread does not end the thread (the runtime cannot), which would keep
// the filter, so its listener would never hang up when the tree ends.
func init() { runtime.LockOSThread() }

// startFiltered starts the program under the filter prog and returns the
// process and the filter's listener.
//
// A seccomp filter belongs to the thread that installs it and to the
// children that thread forks, so the filter is installed on a thread of
// its own, locked to a goroutine that forks the program and then ends
// while still locked, which makes the Go runtime end the thread too: no
// other code of luoemu ever runs under the filter (the init above keeps it
// off the main thread, which never ends). Nobody answers the
// listener until this returns, so that thread makes no call the filter
// notifies between the filter and the fork (os.StartProcess opens
// nothing; the child's calls before execve are not ones it notifies).
//
// With CAP_SYS_ADMIN the filter needs no no_new_privs, and none is set,
// so set-user-ID programs keep working in the tree; without it
// no_new_privs is set, as seccomp requires.
func startFiltered(prog []unix.SockFilter, argv0 string, argv []string, attr *os.ProcAttr) (*os.Process, listener, error) {
	type result struct {
		p   *os.Process
		l   listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine.
		l, err := installFilter(prog)
		if err != nil {
			ch <- result{err: err}
			return
		}
		p, err := os.StartProcess(argv0, argv, attr)
		if err != nil {
			unix.Close(int(l))
			ch <- result{err: err}
			return
		}
		ch <- result{p: p, l: l}
	}()
	r := <-ch
	return r.p, r.l, r.err
}

// installFilter installs prog on the calling thread with a listener.
func installFilter(prog []unix.SockFilter) (listener, error) {
	if !hasCap(unix.CAP_SYS_ADMIN) {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return -1, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if e == unix.EINVAL {
		// Before Linux 5.19, no WAIT_KILLABLE_RECV: a signal may then
		// interrupt a served call, which luoemu undoes (see serve).
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		fd, _, e = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	}
	runtime.KeepAlive(prog)
	if e != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER): %w", e)
	}
	return listener(fd), nil
}

// hasCap tells whether this thread's effective set holds capability c.
func hasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}
