//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// An emulator serves a program tree's seccomp notifications from a fake
// kernel: opens of the device, LUO ioctls on the fake's fds, the live
// update (reboot with LINUX_REBOOT_CMD_KEXEC) and, with freeze, the calls
// that would change a preserved memfd's size.
type emulator struct {
	k       *fake.Kernel
	devPath string // the device's absolute, clean path
	image   string // where a live update writes its image; "" for none
	freeze  bool
	l       listener
	// killable is true when the filter has WAIT_KILLABLE_RECV (Linux
	// 5.19): after luoemu receives a notification, only a fatal signal
	// ends the task's wait.
	killable bool
	log      *log.Logger // nil unless verbose
	// endTree ends the program tree after a live update.
	endTree func()

	kexecMu sync.Mutex
	kexeced bool // guarded by kexecMu
	// exiting, guarded by kexecMu, is set when run waits on replying:
	// a control connection adds to replying only before, so that every
	// Add happens before the Wait.
	exiting bool

	// replying counts the control connections answering a kexec, which
	// must have answered before luoemu exits.
	replying sync.WaitGroup

	stats struct {
		notifs, ioctls, continued atomic.Int64
	}
}

// errNoImage is a live update's error without -image: the kernel's
// answer to reboot(LINUX_REBOOT_CMD_KEXEC) with no kexec image loaded.
var errNoImage = fmt.Errorf("luoemu runs without -image, so there is no next kernel to hand over to: %w", unix.EINVAL)

// errDone says a live update has already happened.
var errDone = errors.New("the live update has already happened")

// serve answers notifications until the program tree has gone (the
// listener hangs up). Each is answered in a goroutine of its own, so a
// slow request never holds up another task's.
func (e *emulator) serve() error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		fds := []unix.PollFd{{Fd: int32(e.l), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll seccomp listener: %w", err)
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				return nil // no task uses the filter any more
			}
			continue
		}
		n := new(seccompNotif)
		if err := e.l.recv(n); err != nil {
			if err == unix.ENOENT {
				continue // the task was interrupted or died first
			}
			return fmt.Errorf("seccomp notification: %w", err)
		}
		e.stats.notifs.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.handle(n)
		}()
	}
}

// handle dispatches one notification by system call.
func (e *emulator) handle(n *seccompNotif) {
	if n.Data.Arch != auditArch {
		e.cont(n)
		return
	}
	a := &n.Data.Args
	switch nr := int(n.Data.Nr); nr {
	case unix.SYS_OPENAT:
		e.serveOpen(n, int(int32(a[0])), a[1], a[2])
	case unix.SYS_OPENAT2:
		e.serveOpenat2(n)
	case sysOpen:
		e.serveOpen(n, unix.AT_FDCWD, a[0], a[1])
	case unix.SYS_IOCTL:
		e.serveIoctl(n)
	case unix.SYS_REBOOT:
		e.serveReboot(n)
	case unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD:
		// The next kernel is the fake's next boot: loading one is a
		// success that touches nothing on this machine.
		e.reply(n, 0)
	default:
		e.serveSize(n)
	}
}

// serveOpen answers open(2) and openat(2) of the device with a new fake
// device fd, installed in the task as the call's result; every other
// open goes on to the kernel, except, with freeze, an O_TRUNC open of a
// frozen memfd (serveOpenTrunc).
func (e *emulator) serveOpen(n *seccompNotif, dirfd int, pathAddr, flags uint64) {
	tid := int(n.Pid)
	path, err := readString(tid, pathAddr, unix.PathMax)
	if err != nil || flags&unix.O_PATH != 0 {
		e.cont(n) // the kernel answers EFAULT or ENAMETOOLONG itself
		return
	}
	if p, ok := resolvePath(tid, dirfd, path); !ok || p != e.devPath {
		e.serveOpenTrunc(n, dirfd, path, flags)
		return
	}
	if !e.l.valid(n.ID) {
		return
	}
	fd, err := e.openDevice()
	if err != nil {
		e.fail(n, toErrno(err))
		return
	}
	e.logf("pid %d: open %s", tid, path)
	cloexec := flags&unix.O_CLOEXEC != 0
	if !e.killable {
		// A signal could interrupt the task between an ADDFD and the
		// answer, restart the open and leave it an fd it never saw
		// (the device busy for good): install and answer at once,
		// though this copy then closes after the task runs on.
		if _, err := e.l.addFD(n.ID, fd, cloexec, true); err != nil && err != unix.ENOENT {
			e.fail(n, toErrno(err))
		}
		unix.Close(fd)
		return
	}
	// In a killable wait the task cannot be interrupted, only killed:
	// install the device, close this copy, then answer, so that the
	// task's close is the release, as on the kernel.
	tfd, err := e.l.addFD(n.ID, fd, cloexec, false)
	unix.Close(fd)
	if err != nil {
		if err != unix.ENOENT {
			e.fail(n, toErrno(err))
		}
		return
	}
	e.reply(n, int64(tfd))
}

// openDevice opens the fake's device and returns an fd of its user end
// that is the only one: the fake kernel's Open, whose Device then lets go
// of its copy.
func (e *emulator) openDevice() (int, error) {
	d, err := e.k.Open()
	if err != nil {
		return -1, err
	}
	defer d.Close()
	return unix.FcntlInt(uintptr(d.Fd()), unix.F_DUPFD_CLOEXEC, 0)
}

// openHow is struct open_how of openat2(2).
type openHow struct {
	Flags, Mode, Resolve uint64
}

func (e *emulator) serveOpenat2(n *seccompNotif) {
	a := &n.Data.Args
	var how openHow
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&how)), unsafe.Sizeof(how))
	if a[3] < uint64(len(buf)) || readMem(int(n.Pid), a[2], buf) < len(buf) {
		e.cont(n)
		return
	}
	e.serveOpen(n, int(int32(a[0])), a[1], how.Flags)
}

// reboot(2)'s other accepted magic2 values (include/uapi/linux/reboot.h).
const (
	rebootMagic2A = 0x05121996
	rebootMagic2B = 0x16041998
	rebootMagic2C = 0x20112000
)

// serveReboot answers reboot(LINUX_REBOOT_CMD_KEXEC): the live update.
// reboot's own checks come first, in its order: CAP_SYS_BOOT (EPERM),
// then the magic numbers (EINVAL). The calling task never returns from a
// successful one: the tree ends.
func (e *emulator) serveReboot(n *seccompNotif) {
	a := &n.Data.Args
	hasCap := taskHasCap(int(n.Pid), unix.CAP_SYS_BOOT)
	if !e.l.valid(n.ID) {
		return // the status read may be another task's
	}
	if !hasCap {
		e.fail(n, unix.EPERM)
		return
	}
	magic2 := uint32(a[1])
	if uint32(a[0]) != unix.LINUX_REBOOT_MAGIC1 || (magic2 != unix.LINUX_REBOOT_MAGIC2 &&
		magic2 != rebootMagic2A && magic2 != rebootMagic2B &&
		magic2 != rebootMagic2C) {
		e.fail(n, unix.EINVAL)
		return
	}
	e.logf("pid %d: reboot(LINUX_REBOOT_CMD_KEXEC)", n.Pid)
	if err := e.kexec(); err != nil {
		e.logf("live update failed: %v", err)
		if errors.Is(err, errDone) {
			return // the task is being killed
		}
		e.fail(n, kexecErrno(err))
	}
}

// kexec performs the live update: the fake freezes every outgoing
// session into the image, and the program tree ends, as userspace does
// when the machine kexecs. On failure the tree runs on, as after a
// failed reboot.
func (e *emulator) kexec() error {
	e.kexecMu.Lock()
	defer e.kexecMu.Unlock()
	if e.kexeced {
		return errDone
	}
	if e.image == "" {
		return errNoImage
	}
	if err := e.k.Kexec(); err != nil {
		var pe *fake.PanicError
		if !errors.As(err, &pe) {
			return err
		}
		// The kexec happened and the next kernel will panic on the
		// image: that is for the next run to show.
		e.logf("live update: %v", err)
	}
	e.kexeced = true
	e.endTree()
	return nil
}

// kexecErrno is the errno reboot returns for a failed live update.
func kexecErrno(err error) unix.Errno {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return unix.EIO
}

func (e *emulator) cont(n *seccompNotif) {
	e.stats.continued.Add(1)
	e.l.send(&seccompResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

func (e *emulator) reply(n *seccompNotif, val int64) {
	e.l.send(&seccompResp{ID: n.ID, Val: val})
}

func (e *emulator) fail(n *seccompNotif, errno unix.Errno) {
	e.l.send(&seccompResp{ID: n.ID, Error: -int32(errno)})
}

func (e *emulator) logf(format string, args ...any) {
	if e.log != nil {
		e.log.Printf(format, args...)
	}
}
