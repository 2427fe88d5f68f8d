//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func init() {
	testHelpers["faults"] = faultsHelper
}

// faultsHelper hands luoemu bad pointers and sizes and prints, one line
// each, "CASE ERRNO" for every case; last it creates and names a session
// ("after ..."), to show that luoemu still serves.
func faultsHelper([]string) int {
	fail := func(err error) int {
		fmt.Println("helper:", err)
		return 1
	}
	dev, err := unix.Open("/dev/liveupdate", unix.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	sess, err := createSession(dev, "faults")
	if err != nil {
		return fail(err)
	}
	ps := uintptr(unix.Getpagesize())
	report := func(name string, e error) { fmt.Printf("%s %s\n", name, errnoName(e)) }

	// hole is a page mapped and unmapped just now: a later mmap may
	// reuse its address, so each use makes a new one.
	hole := func() uintptr {
		a, _, err := pages(1, 1)
		if err != nil {
			panic(err)
		}
		return a
	}
	report("create-null", ioctlAddr(dev, liveupdate.CmdCreateSession, 0))
	report("create-unmapped", ioctlAddr(dev, liveupdate.CmdCreateSession, hole()))
	report("preserve-null", ioctlAddr(sess, liveupdate.CmdPreserveFD, 0))
	report("getname-unmapped", ioctlAddr(sess, liveupdate.CmdGetName, hole()))

	// A struct that starts 8 bytes before a hole: its size is readable,
	// the rest is not.
	base, m, err := pages(2, 1)
	if err != nil {
		return fail(err)
	}
	copy(m[ps-8:], sessionArg("straddle")[:8])
	report("create-straddling", ioctlAddr(dev, liveupdate.CmdCreateSession, base+ps-8))
	// The size field itself straddles the hole.
	binary.NativeEndian.PutUint16(m[ps-2:], 72)
	report("create-size-straddling", ioctlAddr(dev, liveupdate.CmdCreateSession, base+ps-2))

	// size 0xffffffff over 4 zeroed pages and then a hole: the kernel
	// checks that the bytes past its struct are zero, up to the hole.
	base, m, err = pages(5, 1)
	if err != nil {
		return fail(err)
	}
	copy(m, sessionArg("huge"))
	binary.NativeEndian.PutUint32(m, 0xffffffff)
	report("create-huge-size", ioctlAddr(dev, liveupdate.CmdCreateSession, base))
	m[3*ps+17] = 1 // a non-zero byte before the hole: E2BIG first
	report("create-huge-size-nonzero", ioctlAddr(dev, liveupdate.CmdCreateSession, base))

	// The same past 64 KiB, the most a request to the fake carries:
	// luoemu scans the rest itself.
	base, m, err = pages(41, 1)
	if err != nil {
		return fail(err)
	}
	copy(m, sessionArg("huge"))
	binary.NativeEndian.PutUint32(m, 0xffffffff)
	report("create-huge-size-far", ioctlAddr(dev, liveupdate.CmdCreateSession, base))
	m[100<<10] = 1
	report("create-huge-size-far-nonzero", ioctlAddr(dev, liveupdate.CmdCreateSession, base))

	// The argument is readable but not writable: the session is made,
	// the reply cannot be copied back, the session is released.
	base, m, err = pages(1, 0)
	if err != nil {
		return fail(err)
	}
	copy(m, sessionArg("readonly"))
	if err := unix.Mprotect(m, unix.PROT_READ); err != nil {
		return fail(err)
	}
	report("create-readonly", ioctlAddr(dev, liveupdate.CmdCreateSession, base))
	s, err := createSession(dev, "readonly")
	report("create-readonly-again", unwrapErrno(err))
	if err == nil {
		unix.Close(s)
	}

	// Opens of bad path pointers are the kernel's own EFAULT.
	openat := func(addr uintptr) error {
		atFDCWD := unix.AT_FDCWD
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), addr, unix.O_RDWR, 0, 0, 0)
		if e == 0 {
			unix.Close(int(fd))
			return nil
		}
		return e
	}
	report("open-null", openat(0))
	report("open-unmapped", openat(hole()))
	// "/dev/liveupdate" right before a hole, with no NUL.
	base, m, err = pages(2, 1)
	if err != nil {
		return fail(err)
	}
	path := "/dev/liveupdate"
	copy(m[int(ps)-len(path):], path)
	report("open-straddling", openat(base+ps-uintptr(len(path))))

	// After all that, luoemu still serves.
	s, err = createSession(dev, "after-faults")
	if err != nil {
		return fail(err)
	}
	name, err := sessionName(s)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("after %s\n", name)
	return 0
}

// unwrapErrno is the errno in err, or err.
func unwrapErrno(err error) error {
	for e := err; e != nil; {
		if errno, ok := e.(unix.Errno); ok {
			return errno
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

// TestConfineFaults gives luoemu, from a program in its tree, NULL and
// unmapped pointers, structs that run into unmapped memory, sizes of
// 0xffffffff and a reply it cannot write: each gets the kernel's errno,
// and luoemu serves on afterwards.
func TestConfineFaults(t *testing.T) {
	out, code := runOut(t, luoemu(nil, helperCommand(t, "faults")...))
	if code != 0 {
		t.Fatalf("helper exited %d:\n%s", code, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	for c, want := range map[string]string{
		"create-null":                  "EFAULT",
		"create-unmapped":              "EFAULT",
		"preserve-null":                "EFAULT",
		"getname-unmapped":             "EFAULT",
		"create-straddling":            "EFAULT",
		"create-size-straddling":       "EFAULT",
		"create-huge-size":             "EFAULT",
		"create-huge-size-nonzero":     "E2BIG",
		"create-huge-size-far":         "EFAULT",
		"create-huge-size-far-nonzero": "E2BIG",
		"create-readonly":              "EFAULT",
		"create-readonly-again":        "0",
		"open-null":                    "EFAULT",
		"open-unmapped":                "EFAULT",
		"open-straddling":              "EFAULT",
		"after":                        "after-faults",
	} {
		if got[c] != want {
			t.Errorf("%s: %q, want %q", c, got[c], want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
