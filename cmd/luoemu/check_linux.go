//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// seccompNotifSizes is struct seccomp_notif_sizes.
type seccompNotifSizes struct {
	Notif, Resp, Data uint16
}

// supported checks what luoemu needs of this machine's kernel, each with
// an error that says what is missing and, where it can be, why:
// seccomp user notification (Linux 5.0), the sizes of its structs,
// SECCOMP_ADDFD_FLAG_SEND (5.14), pidfd_open and pidfd_getfd (5.6),
// and that ptrace rules let luoemu take its children's fds.
func supported() error {
	action := uint32(unix.SECCOMP_RET_USER_NOTIF)
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action))); e != 0 {
		return fmt.Errorf("seccomp user notification (SECCOMP_RET_USER_NOTIF, Linux 5.0) is not available: %w%s", e, blockedHint(e))
	}
	var sz seccompNotifSizes
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&sz))); e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_GET_NOTIF_SIZES): %w", e)
	}
	if int(sz.Notif) < int(unsafe.Sizeof(seccompNotif{})) || int(sz.Resp) < int(unsafe.Sizeof(seccompResp{})) || int(sz.Data) < int(unsafe.Sizeof(seccompData{})) {
		return fmt.Errorf("this kernel's seccomp notification structs are smaller than luoemu's (%+v)", sz)
	}
	if !kernelAtLeast(5, 14) {
		return fmt.Errorf("kernel %s has no SECCOMP_ADDFD_FLAG_SEND, which luoemu needs to answer an open with a fake fd: Linux 5.14 or later is needed", release())
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open (Linux 5.3): %w%s", err, blockedHint(err))
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, 0, 0)
	if err != nil {
		return fmt.Errorf("pidfd_getfd (Linux 5.6), which luoemu needs to take the fds a program names: %w%s", err, blockedHint(err))
	}
	unix.Close(fd)
	if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
		switch strings.TrimSpace(string(b)) {
		case "3":
			return errors.New("kernel.yama.ptrace_scope is 3: no process may take another's fds (pidfd_getfd), so luoemu cannot serve PRESERVE_FD")
		case "2":
			if !hasCap(unix.CAP_SYS_PTRACE) {
				return errors.New("kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may take another process's fds (pidfd_getfd); run luoemu with it")
			}
		}
	}
	return nil
}

// blockedHint explains errnos a container's seccomp profile gives.
func blockedHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EACCES) {
		return " (a container's seccomp profile or a sandbox may block it)"
	}
	return ""
}

func release() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast compares the running kernel's release with major.minor.
func kernelAtLeast(major, minor int) bool {
	var a, b int
	if _, err := fmt.Sscanf(release(), "%d.%d", &a, &b); err != nil {
		return false
	}
	return a > major || a == major && b >= minor
}

// checkMain is "luoemu check": the kernel features, then a trial run of
// luoemu itself as the program, which opens the device, creates a
// session, preserves a memfd and closes it all.
func checkMain(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "usage: luoemu check")
		return 2
	}
	fmt.Printf("kernel %s\n", release())
	if err := supported(); err != nil {
		fmt.Printf("FAIL: %v\n", err)
		return 1
	}
	fmt.Println("ok: seccomp user notification, SECCOMP_ADDFD_FLAG_SEND, pidfd_getfd")
	self, err := os.Executable()
	if err != nil {
		fmt.Printf("FAIL: %v\n", err)
		return 1
	}
	code, err := run(runConfig{device: "/dev/liveupdate", gen: defaultGen(), freeze: true, argv: []string{self, probeCmd}})
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		fmt.Printf("FAIL: a program under luoemu could not use the fake: %v\n", err)
		return 1
	}
	fmt.Println("ok: a program under luoemu opened /dev/liveupdate, created a session and preserved a memfd")
	return 0
}

// probeCmd is the hidden subcommand check runs under luoemu.
const probeCmd = "__probe"

// probeMain uses the device as a kernel agent does; it runs under luoemu.
func probeMain() int {
	d, err := liveupdate.Open("/dev/liveupdate")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Close()
	s, err := d.CreateSession("luoemu-check")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	fd, err := unix.MemfdCreate("luoemu-check", unix.MFD_CLOEXEC)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unix.Close(fd)
	f := os.NewFile(uintptr(fd), "memfd")
	if err := s.Preserve(f, 1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
