//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd of a thread, not only
// of a thread-group leader.
const pidfdThread = unix.O_EXCL

// getFD duplicates fd of task tid into luoemu with pidfd_getfd: the same
// open file, as the kernel's fget of it would find. It fails with EBADF
// when the task has no such fd. Callers check the notification is still
// valid afterwards: until then the tid could be another task's.
func getFD(tid, fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == unix.EINVAL {
		// Before Linux 6.9, a pidfd names a thread group: use the
		// tid's, whose fd table a thread shares unless it was
		// cloned without CLONE_FILES.
		tgid, terr := threadGroup(tid)
		if terr != nil {
			return -1, terr
		}
		pidfd, err = unix.PidfdOpen(tgid, 0)
	}
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	n, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, err
	}
	return n, nil
}

// threadGroup returns the thread-group id of task tid.
func threadGroup(tid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, unix.ESRCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, unix.ESRCH
}

// taskHasCap tells whether task tid has capability c in its effective
// set, from /proc/TID/status.
func taskHasCap(tid, c int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && eff&(1<<uint(c)) != 0
		}
	}
	return false
}

// resolvePath makes path, as task tid names it relative to dirfd (or its
// working directory for AT_FDCWD), absolute and clean. Symbolic links are
// not followed.
func resolvePath(tid, dirfd int, path string) (string, bool) {
	if filepath.IsAbs(path) {
		return filepath.Clean(path), true
	}
	link := fmt.Sprintf("/proc/%d/cwd", tid)
	if dirfd != unix.AT_FDCWD {
		link = fmt.Sprintf("/proc/%d/fd/%d", tid, dirfd)
	}
	base, err := os.Readlink(link)
	if err != nil || !filepath.IsAbs(base) {
		return "", false
	}
	return filepath.Join(base, path), true
}
