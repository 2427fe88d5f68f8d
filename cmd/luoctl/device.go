package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-luo/luo/liveupdate"
)

// checkDevice checks that the LUO device exists and can be opened, as an
// agent will open it. It opens the device for a moment: the kernel lets
// one process at a time hold it, and the first open after a live update
// restores the sessions handed over.
func checkDevice(env *Env, othersFailed bool) Result {
	r := Result{Name: "device"}
	path := env.Device
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status = Fail
		if mm, ok := registeredMisc(env.Sys); ok {
			r.Detail = fmt.Sprintf("%s does not exist, but the kernel has registered the liveupdate device (%s)", path, mm)
			r.Fix = fmt.Sprintf("create the node: mknod %s c %s (udev or devtmpfs normally do)", path, strings.Replace(mm, ":", " ", 1))
			return r
		}
		r.Detail = path + " does not exist"
		const needs = "the kernel creates it only when LUO is built in (CONFIG_LIVEUPDATE=y), KHO is enabled and it was booted with liveupdate=on"
		if othersFailed {
			r.Fix = needs + ": fix the failures above and reboot"
		} else {
			r.Fix = needs + "; if all that holds, see 'dmesg | grep -i -e liveupdate -e kho' for why LUO did not start"
		}
		if path != liveupdate.DefaultPath {
			r.Fix += fmt.Sprintf(" (or give -device the right path; the kernel's is %s)", liveupdate.DefaultPath)
		}
		return r
	case errors.Is(err, fs.ErrPermission):
		r.Status, r.Detail = Fail, "cannot look at "+path+": permission denied"
		r.Fix = "run luoctl check as root"
		return r
	case err != nil:
		r.Status, r.Detail = Unknown, "cannot look at "+path+": "+errText(err)
		return r
	}
	var kind string
	switch m := fi.Mode(); {
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeSocket != 0:
		kind = "unix socket: a fake kernel"
	default:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s is not a character device (mode %v)", path, m)
		r.Fix = "point -device at the LUO device, " + liveupdate.DefaultPath
		return r
	}

	dev, err := liveupdate.Open(path)
	switch {
	case err == nil:
		if err := dev.Close(); err != nil {
			r.Status, r.Detail = Fail, "closing "+path+": "+err.Error()
			return r
		}
		r.Status, r.Detail = Pass, fmt.Sprintf("%s opens (%s)", path, kind)
	case errors.Is(err, liveupdate.ErrDeviceBusy):
		r.Status = Fail
		who := "pid unknown"
		if h := findHolders(env.Proc, path); len(h) > 0 {
			who = strings.Join(h, ", ")
		}
		r.Detail = fmt.Sprintf("%s is held by another process (%s)", path, who)
		r.Fix = "the kernel lets one process at a time open the device: stop that process, or check again once it has closed the device"
	case errors.Is(err, fs.ErrPermission):
		r.Status, r.Detail = Fail, "opening "+path+": permission denied"
		r.Fix = "run luoctl check as root (the agent doing the live update needs the same access)"
	case errors.Is(err, syscall.EIO):
		r.Status = Fail
		r.Detail = "opening " + path + " fails with EIO: this kernel could not restore the state the previous kernel handed over, and every open fails until the next boot"
		r.Fix = "see 'dmesg | grep -i liveupdate'; reboot to start afresh (the handed-over state is lost)"
	default:
		r.Status, r.Detail = Fail, err.Error()
	}
	return r
}

// registeredMisc returns "MAJOR:MINOR" of the liveupdate misc device when
// sysfs (at sys) lists it.
func registeredMisc(sys string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(sys, "class", "misc", "liveupdate", "dev"))
	if err != nil {
		return "", false
	}
	mm := strings.TrimSpace(string(b))
	return mm, mm != ""
}

// findHolders scans the fd links of every process under proc (usually
// /proc) for the device at path and returns "pid N (comm)" for each
// process that has it open. Processes it may not look into are skipped;
// a fake kernel's socket never matches (its fds link to "socket:[inode]").
func findHolders(proc, path string) []string {
	targets := map[string]bool{path: true}
	if abs, err := filepath.Abs(path); err == nil {
		targets[abs] = true
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		targets[real] = true
	}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fdDir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && targets[link] {
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	var out []string
	for _, pid := range pids {
		s := "pid " + strconv.Itoa(pid)
		if comm, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "comm")); err == nil {
			if c := strings.TrimSpace(string(comm)); c != "" {
				s += " " + c
			}
		}
		out = append(out, s)
	}
	return out
}
