package fake

import (
	"fmt"
	"strconv"
	"syscall"

	"github.com/go-luo/luo/kho"
)

// Generation is the kernel release whose LUO behaviour a fake kernel
// models (WithGeneration). Generations are named for the releases they
// model; DefaultGeneration is the one New uses.
type Generation int

const (
	// Linux6_19 is the first merged LUO, from the Linux 6.19 merge window
	// (as read in torvalds/linux at commit 16cec0d2 and its neighbours,
	// not at the v6.19 tag): two device ioctls and three session ioctls
	// (GET_NAME answers EINVAL, its nr out of range), no direction check,
	// no name validation on create, no EBUSY on double preservation, no
	// caching of failed retrieves, FINISH's reserved field not checked,
	// memfd-v1 (seals not kept), at most 819 outgoing sessions (ENOMEM)
	// and 128 files per session (ENOSPC).
	Linux6_19 Generation = iota + 1

	// Linux7_2 is Linux 7.2 (as read in Debian's linux-source-7.2, 7.2.13,
	// and run in a VM): GET_NAME, direction checks, name validation,
	// EBUSY on double preservation, sticky retrieve errors, EINVAL for a
	// non-zero FINISH reserved field, memfd-v2 as the only memfd handler
	// (seals kept, a memfd is one file however it was opened), sessions
	// and files in chains of KHO blocks of 51 and 63 entries, at most
	// 10,000 blocks each (ENOSPC), and the kernel's bug that a duplicate
	// CREATE_SESSION at 51·k sessions leaves an empty block on which the
	// next kernel panics (see Kernel.Kexec).
	Linux7_2
)

// DefaultGeneration is the generation New models without WithGeneration.
const DefaultGeneration = Linux7_2

// String returns the release the generation models, "linux-6.19" or
// "linux-7.2", or "Generation(N)" for a value that is neither.
func (g Generation) String() string {
	switch g {
	case Linux6_19:
		return "linux-6.19"
	case Linux7_2:
		return "linux-7.2"
	}
	return "Generation(" + strconv.Itoa(int(g)) + ")"
}

// Limits of the kernels: Linux 7.2 holds KHO_MAX_BLOCKS (10,000) blocks of
// 51 session entries, and per session 10,000 blocks of 63 file entries;
// Linux 6.19 had fixed arrays: 16 pages of 80-byte session entries after
// an 8-byte header (819) and 2 pages of 64-byte file entries (128).
const (
	Linux7_2MaxSessions  = kho.MaxBlocks * kho.SessionsPerBlock
	Linux7_2MaxFiles     = kho.MaxBlocks * kho.FilesPerBlock
	Linux6_19MaxSessions = 819
	Linux6_19MaxFiles    = 128
)

// behaviour is what the fake does differently per generation.
type behaviour struct {
	getName            bool          // LIVEUPDATE_SESSION_GET_NAME exists
	directionCheck     bool          // session ioctls check the session's direction
	nameValidation     bool          // CREATE_SESSION rejects empty and unterminated names
	doublePreserveBusy bool          // the preserved-files table: EBUSY on a second preserve
	stickyRetrieve     bool          // a failed retrieve's errno is kept
	finishReserved     bool          // FINISH rejects a non-zero reserved field
	memfd              string        // the memfd handler's compatible string
	sessionBlocks      bool          // outgoing sessions live in a grown and shrunk block set
	maxSessions        int           // outgoing sessions the kernel holds
	sessionsFull       syscall.Errno // a create past maxSessions
	maxFiles           int           // files per session (ENOSPC past it)
}

func (g Generation) behaviour() behaviour {
	if g == Linux6_19 {
		return behaviour{
			memfd:        kho.MemfdV1,
			maxSessions:  Linux6_19MaxSessions,
			sessionsFull: syscall.ENOMEM,
			maxFiles:     Linux6_19MaxFiles,
		}
	}
	return behaviour{
		getName:            true,
		directionCheck:     true,
		nameValidation:     true,
		doublePreserveBusy: true,
		stickyRetrieve:     true,
		finishReserved:     true,
		memfd:              kho.MemfdV2,
		sessionBlocks:      true,
		maxSessions:        Linux7_2MaxSessions,
		sessionsFull:       syscall.ENOSPC,
		maxFiles:           Linux7_2MaxFiles,
	}
}

func (g Generation) valid() bool { return g == Linux6_19 || g == Linux7_2 }

// MarshalText returns the generation's String, so that a Generation can
// be a flag (flag.TextVar) or a configuration field.
func (g Generation) MarshalText() ([]byte, error) {
	if !g.valid() {
		return nil, fmt.Errorf("fake: %v is not a generation the fake models", g)
	}
	return []byte(g.String()), nil
}

// UnmarshalText sets g from a name String returns: "linux-7.2" or
// "linux-6.19".
func (g *Generation) UnmarshalText(b []byte) error {
	for _, c := range []Generation{Linux6_19, Linux7_2} {
		if string(b) == c.String() {
			*g = c
			return nil
		}
	}
	return fmt.Errorf("fake: no generation %q (the fake models linux-6.19 and linux-7.2)", b)
}
