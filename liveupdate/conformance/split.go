package conformance

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-luo/luo/liveupdate"
)

// Split describes one boot of a split run: a chain of kernels linked by
// real kexecs, each boot running the test binary again, in a new process
// on a new kernel (see "Split runs" in the package documentation).
type Split struct {
	// Boot is the index of this kernel in the chain, 0 first. Boot 0 runs
	// every case (the first stage of those that span live updates); boot
	// N > 0 runs only the cases with a stage N, and only that stage. It
	// must be below SplitBoots().
	Boot int

	// RunID names the chain, the same in every boot of it and different
	// from other chains on the same machine: 1 to 16 bytes of ASCII
	// letters, digits, '-' and '_'. Session names derive from it and from
	// each case's name, so that every boot computes the same names.
	RunID string

	// Hold is called once at the end of the boot's run, unless this is
	// the last boot (Boot+1 == SplitBoots()), with every session that
	// must survive the kexec (possibly none). It must keep them open
	// through the kexec (the kernel drops a session when its last fd
	// closes, and this process exits before the kexec), for instance by
	// handing copies of their fds to a process that stays, or perform the
	// kexec itself (a fake kernel with an image file). Run closes the
	// sessions that are still open when Hold returns, then checks that
	// the run left no descriptor open.
	Hold func(sessions []*liveupdate.Session) error
}

// The environment of a split run, read by SplitFromEnv (see "Split runs"
// in the package documentation).
const (
	// BootEnv holds Split.Boot, in decimal.
	BootEnv = "LUO_CONFORMANCE_BOOT"
	// RunEnv holds Split.RunID.
	RunEnv = "LUO_CONFORMANCE_RUN"
	// HoldEnv holds the path of the rig's unix stream socket that the
	// sessions are handed to, or @NAME for an abstract socket.
	HoldEnv = "LUO_CONFORMANCE_HOLD"
	// ResultsEnv, when set, names the file that package liveupdate's
	// TestKernelConformance writes its Results to (Results.WriteTo),
	// split run or not.
	ResultsEnv = "LUO_CONFORMANCE_RESULTS"
)

// HoldMaxFDs is the most session fds one message of the hold protocol
// carries (the kernel's SCM_MAX_FD, include/net/scm.h, is 253).
const HoldMaxFDs = 250

// Bytes of the hold protocol.
const (
	HoldFDs  byte = 'F' // a message carrying up to HoldMaxFDs fds
	HoldEnd  byte = 'E' // the last message, without fds
	HoldKept byte = 'K' // the rig's answer: it holds every fd
)

// holdTimeout bounds how long Hold waits for the rig to accept the
// connection, take the fds and answer.
const holdTimeout = time.Minute

// maxRunIDLen bounds Split.RunID, leaving room in session names.
const maxRunIDLen = 16

// SplitFromEnv returns the Split of this boot described by the
// environment (BootEnv, RunEnv, HoldEnv; an empty variable counts as
// unset), with a Hold that hands the sessions to the rig's socket. It
// returns nil, nil when none of the three is set, and an error naming the
// variable when one is missing or malformed.
func SplitFromEnv() (*Split, error) {
	boot, run, hold := os.Getenv(BootEnv), os.Getenv(RunEnv), os.Getenv(HoldEnv)
	if boot == "" && run == "" && hold == "" {
		return nil, nil
	}
	for _, v := range []struct{ name, val string }{{BootEnv, boot}, {RunEnv, run}, {HoldEnv, hold}} {
		if v.val == "" {
			return nil, fmt.Errorf("conformance: split run: %s is not set (a split run needs %s, %s and %s)", v.name, BootEnv, RunEnv, HoldEnv)
		}
	}
	n, err := strconv.Atoi(boot)
	if err != nil {
		return nil, fmt.Errorf("conformance: split run: %s=%q is not a boot number", BootEnv, boot)
	}
	if err := checkBoot(n); err != nil {
		return nil, fmt.Errorf("conformance: split run: %s=%s: %w", BootEnv, boot, err)
	}
	if err := checkRunID(run); err != nil {
		return nil, fmt.Errorf("conformance: split run: %s: %w", RunEnv, err)
	}
	s := &Split{Boot: n, RunID: run}
	// sun_path holds 108 bytes with the terminating NUL; an abstract
	// name has no NUL but a leading one instead of the '@'.
	if len(hold) > 107 {
		return nil, fmt.Errorf("conformance: split run: %s is %d bytes long, more than a unix socket address holds (107)", HoldEnv, len(hold))
	}
	s.Hold = func(sessions []*liveupdate.Session) error { return holdOver(hold, sessions) }
	return s, nil
}

// check checks Boot and RunID.
func (s *Split) check() error {
	if err := checkBoot(s.Boot); err != nil {
		return err
	}
	return checkRunID(s.RunID)
}

func checkBoot(n int) error {
	if n < 0 || n >= SplitBoots() {
		return fmt.Errorf("boot %d: a split run has boots 0 to %d (SplitBoots)", n, SplitBoots()-1)
	}
	return nil
}

func checkRunID(id string) error {
	if id == "" || len(id) > maxRunIDLen {
		return fmt.Errorf("run ID %q: want 1 to %d bytes", id, maxRunIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("run ID %q: byte %d (%q) is not an ASCII letter, digit, '-' or '_'", id, i, c)
		}
	}
	return nil
}
