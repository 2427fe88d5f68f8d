//go:build linux

package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// blockSessions is how many session entries one block of Linux 7.2's
// session block set holds.
const blockSessions = 51

// dupName names session i of the duplicate-create chains.
func dupName(i int) string { return "luovm-dup-" + strconv.Itoa(i) }

// dupCreateBefore fills one block with sessions, creates a duplicate of
// one (EEXIST, and on Linux 7.2.13 an empty block is left behind), and
// with repair closes the last session again. The sessions left stay open
// in this process, the guest's init, until the kexec.
func dupCreateBefore(repair bool) error {
	d, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		return err
	}
	defer d.Close()
	var last *liveupdate.Session
	for i := range blockSessions {
		s, err := d.CreateSession(dupName(i))
		if err != nil {
			return err
		}
		if repair && i == blockSessions-1 {
			last = s
			continue
		}
		fd, err := unix.Dup(s.Fd())
		s.Close()
		if err != nil {
			return err
		}
		keep(fd)
	}
	_, err = d.CreateSession(dupName(0))
	if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create a duplicate of %q: got %v, want EEXIST", dupName(0), err)
	}
	if repair {
		return last.Close()
	}
	return nil
}

// dupCreateAfter checks, in the kernel after a repaired duplicate create,
// that the sessions kept are there and the one closed is not, and finishes
// them.
func dupCreateAfter() error {
	d, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		return err
	}
	defer d.Close()
	for i := range blockSessions - 1 {
		s, err := d.RetrieveSession(dupName(i))
		if err != nil {
			return err
		}
		err = s.Finish()
		s.Close()
		if err != nil {
			return err
		}
	}
	s, err := d.RetrieveSession(dupName(blockSessions - 1))
	if err == nil {
		s.Close()
		return fmt.Errorf("session %q, closed before the kexec, was carried", dupName(blockSessions-1))
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("retrieve %q, closed before the kexec: got %v, want ENOENT", dupName(blockSessions-1), err)
	}
	return nil
}
