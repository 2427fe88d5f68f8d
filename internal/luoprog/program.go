// Package luoprog is LUO programs for differential testing: sequences of
// operations over a few session names, tokens and memfds, with live
// updates between them, that a generator makes from a seed (or the fuzzer
// from bytes), a runner executes on a target, the fake or a kernel,
// recording a trace of every step, and a shrinker reduces to the shortest
// program that still shows a difference.
package luoprog

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Kind is what an operation does.
type Kind uint8

// The operations. Slots name what a program holds in one boot: the
// device, session handles (slot S), memfds (slot M).
const (
	Open          Kind = iota // open the device
	CloseDevice               // close the device
	Create                    // CREATE_SESSION of name N into session slot S
	Retrieve                  // RETRIEVE_SESSION of name N into S
	Preserve                  // PRESERVE_FD of memfd M with token T on S
	RetrieveFD                // RETRIEVE_FD of token T on S into memfd slot M, observed
	Finish                    // FINISH on S
	GetName                   // GET_NAME on S
	CloseSession              // close S
	DupClose                  // dup S's fd and close the original: S lives on in the copy
	Raw                       // a raw request of command C with size variant Z on the device (S = 255) or S
	MemfdNew                  // a new memfd of size Z in M (sealable when N is odd)
	MemfdWrite                // write Z bytes at offset N×512 of M
	MemfdTruncate             // ftruncate M to Z
	MemfdSeal                 // F_ADD_SEALS of seal set N on M
	Kexec                     // a live update: every handle of this boot is gone
	numKinds
)

var kindNames = [...]string{"open", "close-device", "create", "retrieve", "preserve", "retrieve-fd", "finish",
	"get-name", "close-session", "dup-close", "raw", "memfd-new", "memfd-write", "memfd-truncate", "memfd-seal", "kexec"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Pool sizes: a program's operands index these.
const (
	NumNames    = 4
	NumSlots    = 4
	NumMemfds   = 3
	NumTokens   = 4
	NumSizes    = 6
	MaxOps      = 64
	MaxKexecs   = 2
	opBytes     = 5
	deviceSlot  = 255
	numRawSizes = 6
	// numRawCommands is how many commands Raw chooses from: the six
	// LUO commands.
	numRawCommands = 6
)

// Names are the session names programs use, under a prefix the runner adds.
var Names = [NumNames]string{"a", "b", "c", strings.Repeat("n", 40)}

// Tokens are the file tokens programs use.
var Tokens = [NumTokens]uint64{1, 2, 7, 1 << 63}

// Sizes are the memfd sizes and write lengths programs use.
var Sizes = [NumSizes]int64{0, 1, 4095, 4096, 12289, 65536}

// sealSets are the seal sets MemfdSeal adds: F_SEAL_GROW, SHRINK, WRITE,
// FUTURE_WRITE, SEAL, EXEC, and GROW|SHRINK.
var sealSets = [...]int{0x4, 0x2, 0x8, 0x10, 0x1, 0x20, 0x6}

// An Op is one operation; which operands mean something depends on Kind.
type Op struct {
	Kind Kind
	N    uint8 // name index, seal set, write offset unit
	S    uint8 // session slot (deviceSlot: the device, for Raw)
	M    uint8 // memfd slot; for Raw, the command
	T    uint8 // token index; size index
}

// String writes the operation as a trace line names it.
func (o Op) String() string {
	switch o.Kind {
	case Create, Retrieve:
		return fmt.Sprintf("%v %q s%d", o.Kind, Names[o.N], o.S)
	case Preserve:
		return fmt.Sprintf("%v s%d m%d t%d", o.Kind, o.S, o.M, Tokens[o.T])
	case RetrieveFD:
		return fmt.Sprintf("%v s%d t%d m%d", o.Kind, o.S, Tokens[o.T], o.M)
	case Finish, GetName, CloseSession, DupClose:
		return fmt.Sprintf("%v s%d", o.Kind, o.S)
	case Raw:
		return fmt.Sprintf("%v on %s cmd %d variant %d", o.Kind, rawTarget(o.S), o.M, o.T)
	case MemfdNew:
		return fmt.Sprintf("%v m%d size %d sealable %v", o.Kind, o.M, Sizes[o.T], o.N%2 == 1)
	case MemfdWrite:
		return fmt.Sprintf("%v m%d at %d len %d", o.Kind, o.M, int(o.N)*512, Sizes[o.T])
	case MemfdTruncate:
		return fmt.Sprintf("%v m%d to %d", o.Kind, o.M, Sizes[o.T])
	case MemfdSeal:
		return fmt.Sprintf("%v m%d seals %#x", o.Kind, o.M, sealSets[o.N])
	}
	return o.Kind.String()
}

func rawTarget(s uint8) string {
	if s == deviceSlot {
		return "device"
	}
	return fmt.Sprintf("s%d", s)
}

// A Program is a sequence of operations. Kexec operations split it into
// stages, each run by one boot.
type Program []Op

// String lists the operations, one a line.
func (p Program) String() string {
	var b strings.Builder
	for i, o := range p {
		fmt.Fprintf(&b, "%2d %v\n", i, o)
	}
	return b.String()
}

// Stages returns how many boots the program needs: one more than its
// live updates.
func (p Program) Stages() int {
	n := 1
	for _, o := range p {
		if o.Kind == Kexec {
			n++
		}
	}
	return n
}

// Decode makes a program of bytes, five an operation (kind, N, S, M, T), every byte string a
// valid program: operands are reduced modulo their pools, and past
// MaxOps operations or MaxKexecs live updates the rest is dropped. The
// fuzzer's inputs become programs this way.
func Decode(b []byte) Program {
	var p Program
	kexecs := 0
	for len(b) >= opBytes && len(p) < MaxOps {
		o := Op{Kind: Kind(b[0] % uint8(numKinds)), N: b[1], S: b[2], M: b[3], T: b[4]}
		b = b[opBytes:]
		o = o.normalize()
		if o.Kind == Kexec {
			if kexecs == MaxKexecs {
				break
			}
			kexecs++
		}
		p = append(p, o)
	}
	return p
}

// normalize reduces the operands to their pools.
func (o Op) normalize() Op {
	o.T %= NumSizes
	switch o.Kind {
	case Create, Retrieve:
		o.N %= NumNames
	case MemfdSeal:
		o.N %= uint8(len(sealSets))
	case MemfdWrite:
		o.N %= 32
	}
	if o.Kind == Preserve || o.Kind == RetrieveFD {
		o.T %= NumTokens
	}
	if o.Kind == Raw {
		o.M %= numRawCommands
		o.T %= numRawSizes
		if o.S%5 == 4 {
			o.S = deviceSlot
		} else {
			o.S %= NumSlots
		}
	} else {
		o.S %= NumSlots
		o.M %= NumMemfds
	}
	return o
}

// Encode is the inverse of Decode for a normalized program.
func (p Program) Encode() []byte {
	var b []byte
	for _, o := range p {
		s := o.S
		if o.Kind == Raw && s == deviceSlot {
			s = 4
		}
		b = append(b, byte(o.Kind), o.N, s, o.M, o.T)
	}
	return b
}

// Generate makes a program of about n operations from seed, shaped as a
// live-update agent's: in each boot it opens the device, creates a few
// sessions, makes memfds, writes them and preserves them, and after each
// live update retrieves the sessions and files it kept, reads them back
// and finishes; between those steps come, one in three, operations with
// random operands (raw requests of odd sizes, reserved bits and
// unterminated names, seals, resizes, closes, dups, a second open).
func Generate(seed uint64, n int) Program {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n = min(n, MaxOps)
	stages := 1 + r.IntN(MaxKexecs+1)
	var p Program
	var kept [][2]uint8 // (name, token) preserved in the previous stage
	for stage := range stages {
		var core []Op
		core = append(core, Op{Kind: Open})
		for _, k := range kept {
			slot := uint8(r.IntN(NumSlots))
			core = append(core, Op{Kind: Retrieve, N: k[0], S: slot},
				Op{Kind: RetrieveFD, S: slot, T: k[1], M: uint8(r.IntN(NumMemfds))})
			if r.IntN(2) == 0 {
				core = append(core, Op{Kind: Finish, S: slot})
			}
		}
		kept = nil
		if stage < stages-1 {
			for range 1 + r.IntN(3) {
				nm, slot, m := uint8(r.IntN(NumNames)), uint8(r.IntN(NumSlots)), uint8(r.IntN(NumMemfds))
				core = append(core, Op{Kind: Create, N: nm, S: slot},
					Op{Kind: MemfdNew, M: m, T: uint8(r.IntN(NumSizes)), N: uint8(r.IntN(2))},
					Op{Kind: MemfdWrite, M: m, N: uint8(r.IntN(32)), T: uint8(r.IntN(NumSizes))})
				tk := uint8(r.IntN(NumTokens))
				core = append(core, Op{Kind: Preserve, S: slot, M: m, T: tk})
				kept = append(kept, [2]uint8{nm, tk})
			}
		}
		budget := max(len(core), (n-len(p))/(stages-stage))
		for i := 0; i < len(core) || budget > 0; budget-- {
			if i < len(core) && (r.IntN(3) > 0 || budget <= len(core)-i) {
				p = append(p, core[i].normalize())
				i++
				continue
			}
			o := Op{Kind: Kind(r.IntN(int(Kexec))), N: uint8(r.IntN(256)), S: uint8(r.IntN(256)), M: uint8(r.IntN(256)), T: uint8(r.IntN(256))}
			p = append(p, o.normalize())
		}
		if stage < stages-1 {
			p = append(p, Op{Kind: Kexec})
		}
	}
	if len(p) > MaxOps {
		p = Decode(p.Encode()) // cut to MaxOps
	}
	return p
}
