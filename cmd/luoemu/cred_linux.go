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

// taskCred is what the kernel's generic_permission looks at for a task:
// its filesystem ids, supplementary groups and effective capabilities,
// from /proc/TID/status. User namespaces are not looked at: luoemu's tree
// is taken to run in luoemu's.
type taskCred struct {
	fsuid, fsgid uint32
	groups       []uint32
	capEff       uint64
}

// readCred reads task tid's credentials; false when it cannot.
func readCred(tid int) (taskCred, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return taskCred{}, false
	}
	defer f.Close()
	var c taskCred
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			// real, effective, saved, filesystem
			if len(fields) != 4 {
				return taskCred{}, false
			}
			id, err := strconv.ParseUint(fields[3], 10, 32)
			if err != nil {
				return taskCred{}, false
			}
			if k == "Uid" {
				c.fsuid = uint32(id)
			} else {
				c.fsgid = uint32(id)
			}
			found++
		case "Groups":
			for _, g := range fields {
				id, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return taskCred{}, false
				}
				c.groups = append(c.groups, uint32(id))
			}
		case "CapEff":
			if len(fields) != 1 {
				return taskCred{}, false
			}
			eff, err := strconv.ParseUint(fields[0], 16, 64)
			if err != nil {
				return taskCred{}, false
			}
			c.capEff = eff
			found++
		}
	}
	return c, found == 3
}

// mayWrite is generic_permission(MAY_WRITE) of a regular file: the owner's,
// the group's or the others' write bit, or CAP_DAC_OVERRIDE.
func (c taskCred) mayWrite(st *unix.Stat_t) bool {
	if c.capEff&(1<<unix.CAP_DAC_OVERRIDE) != 0 {
		return true
	}
	mode := st.Mode
	switch {
	case c.fsuid == st.Uid:
		mode >>= 6
	case c.inGroup(st.Gid):
		mode >>= 3
	}
	return mode&2 != 0
}

func (c taskCred) inGroup(gid uint32) bool {
	if c.fsgid == gid {
		return true
	}
	for _, g := range c.groups {
		if g == gid {
			return true
		}
	}
	return false
}

// taskPath makes path, as task tid names it relative to dirfd, a path
// that names the same file from luoemu: resolvePath's, with /proc/self
// and /proc/thread-self, which name the caller, made the task's.
func taskPath(tid, dirfd int, path string) (string, bool) {
	p, ok := resolvePath(tid, dirfd, path)
	if !ok {
		return "", false
	}
	for _, link := range []string{"/proc/self", "/proc/thread-self"} {
		rest, ok := strings.CutPrefix(p, link)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		tgid, err := threadGroup(tid)
		if err != nil {
			return "", false
		}
		base := "/proc/" + strconv.Itoa(tgid)
		if link == "/proc/thread-self" {
			base += "/task/" + strconv.Itoa(tid)
		}
		return filepath.Join(base, rest), true
	}
	return p, true
}

// fsizeLimit is task tid's RLIMIT_FSIZE (soft), or RLIM_INFINITY (also
// when it cannot be read).
func fsizeLimit(tid int) uint64 {
	var rl unix.Rlimit
	if err := unix.Prlimit(tid, unix.RLIMIT_FSIZE, nil, &rl); err != nil {
		return unix.RLIM_INFINITY
	}
	return rl.Cur
}
