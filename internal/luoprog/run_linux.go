//go:build linux

package luoprog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// A Target runs programs: the fake, or a kernel.
type Target struct {
	// Open opens the device of the running kernel.
	Open func() (*liveupdate.Device, error)
	// Kexec performs a live update; nil where the stages run in
	// separate boots (see RunStage).
	Kexec func() error
	// Prefix is put before every session name, so that programs run in
	// one boot do not see each other's sessions.
	Prefix string
	// Frozen, when not nil, tells whether a memfd's size is frozen (it
	// is preserved), for a target that cannot refuse the resize itself:
	// the in-process fake (fake.Kernel.Frozen). The runner then answers
	// as Linux 7.2 does: EPERM for a new size, a write cut before the
	// first page-sized chunk that would extend the file (the chunks of
	// a kernel without transparent huge pages), EPERM when that leaves
	// nothing. A kernel refuses by itself: leave it nil.
	Frozen func(fd int) bool
}

// A Trace is what a program did, a line a step: the operation and its
// errno, the bytes a raw request returned, and what a retrieved memfd
// holds. Two targets that behave alike give equal traces.
type Trace []string

// String joins the lines.
func (t Trace) String() string { return strings.Join(t, "\n") + "\n" }

// Diff returns the first line where t and u differ, and both lines; ok is
// false when they are equal.
func (t Trace) Diff(u Trace) (i int, a, b string, ok bool) {
	for i = 0; i < max(len(t), len(u)); i++ {
		if i >= len(t) || i >= len(u) || t[i] != u[i] {
			if i < len(t) {
				a = t[i]
			}
			if i < len(u) {
				b = u[i]
			}
			return i, a, b, true
		}
	}
	return 0, "", "", false
}

// Run runs every stage of p on tgt, with tgt.Kexec between them, and
// returns the trace. What a stage holds stays open through the live
// update, as a process holding sessions for the next kernel does, and is
// closed after it, as that process's end would close it.
func Run(tgt Target, p Program) Trace {
	var tr Trace
	for stage := range p.Stages() {
		t, st := runStage(tgt, p, stage)
		tr = append(tr, t...)
		if stage < p.Stages()-1 {
			if tgt.Kexec == nil {
				st.closeAll()
				tr = append(tr, "kexec: the target cannot")
				break
			}
			tr = append(tr, "kexec -> "+errString(tgt.Kexec()))
		}
		st.closeAll()
	}
	return tr
}

// RunStage runs stage of p, the operations between its stage-th live
// update and the next, and closes everything it opened: the sessions it
// made are dropped. RunStageKeeping is for a stage whose sessions go on
// to the next boot.
func RunStage(tgt Target, p Program, stage int) Trace {
	tr, st := runStage(tgt, p, stage)
	st.closeAll()
	return tr
}

// RunStageKeeping is RunStage that returns, instead of closing them, the
// session fds open at the stage's end, for the caller to keep open until
// the live update (a split run's holder).
func RunStageKeeping(tgt Target, p Program, stage int) (Trace, []*liveupdate.Session) {
	tr, st := runStage(tgt, p, stage)
	var keep []*liveupdate.Session
	for i, s := range st.sessions {
		if s != nil {
			keep = append(keep, s)
			st.sessions[i] = nil
		}
	}
	st.closeAll()
	return tr, keep
}

// state is what a stage holds.
type state struct {
	tgt      Target
	dev      *liveupdate.Device
	sessions [NumSlots]*liveupdate.Session
	memfds   [NumMemfds]*os.File
}

func (st *state) closeAll() {
	if st.dev != nil {
		st.dev.Close()
	}
	for _, s := range st.sessions {
		if s != nil {
			s.Close()
		}
	}
	for _, f := range st.memfds {
		if f != nil {
			f.Close()
		}
	}
}

func runStage(tgt Target, p Program, stage int) (Trace, *state) {
	st := &state{tgt: tgt}
	var tr Trace
	cur := 0
	for i, o := range p {
		if o.Kind == Kexec {
			cur++
			continue
		}
		if cur != stage {
			continue
		}
		tr = append(tr, fmt.Sprintf("%d %v -> %s", i, o, st.step(o)))
	}
	return tr, st
}

// step runs one operation and says what happened.
func (st *state) step(o Op) string {
	name := st.tgt.Prefix + Names[o.N%NumNames]
	switch o.Kind {
	case Open:
		d, err := st.tgt.Open()
		if err != nil {
			return errString(err)
		}
		if st.dev != nil {
			st.dev.Close()
		}
		st.dev = d
		return "ok"
	case CloseDevice:
		if st.dev == nil {
			return "no device"
		}
		err := st.dev.Close()
		st.dev = nil
		return errString(err)
	case Create, Retrieve:
		if st.dev == nil {
			return "no device"
		}
		var s *liveupdate.Session
		var err error
		if o.Kind == Create {
			s, err = st.dev.CreateSession(name)
		} else {
			s, err = st.dev.RetrieveSession(name)
		}
		if err != nil {
			return errString(err)
		}
		if old := st.sessions[o.S]; old != nil {
			old.Close()
		}
		st.sessions[o.S] = s
		return "ok"
	case Preserve:
		s, f := st.sessions[o.S], st.memfds[o.M]
		if s == nil || f == nil {
			return "no session or memfd"
		}
		return errString(s.Preserve(f, Tokens[o.T]))
	case RetrieveFD:
		s := st.sessions[o.S]
		if s == nil {
			return "no session"
		}
		f, err := s.Retrieve(Tokens[o.T])
		if err != nil {
			return errString(err)
		}
		if old := st.memfds[o.M]; old != nil {
			old.Close()
		}
		st.memfds[o.M] = f
		return "ok " + observe(f)
	case Finish:
		if s := st.sessions[o.S]; s != nil {
			return errString(s.Finish())
		}
		return "no session"
	case GetName:
		if s := st.sessions[o.S]; s != nil {
			n, err := s.Name()
			if err != nil {
				return errString(err)
			}
			return "ok " + strings.TrimPrefix(n, st.tgt.Prefix)
		}
		return "no session"
	case CloseSession:
		if s := st.sessions[o.S]; s != nil {
			st.sessions[o.S] = nil
			return errString(s.Close())
		}
		return "no session"
	case DupClose:
		s := st.sessions[o.S]
		if s == nil {
			return "no session"
		}
		d, err := liveupdate.NewSession(s.Fd())
		if err != nil {
			return errString(err)
		}
		s.Close()
		st.sessions[o.S] = d
		return "ok"
	case Raw:
		return st.raw(o)
	case MemfdNew:
		fd, err := unix.MemfdCreate("luoprog", memfdFlags(o.N))
		if err != nil {
			return errString(err)
		}
		f := os.NewFile(uintptr(fd), "memfd")
		if err := f.Truncate(Sizes[o.T]); err != nil {
			f.Close()
			return errString(err)
		}
		if old := st.memfds[o.M]; old != nil {
			old.Close()
		}
		st.memfds[o.M] = f
		return "ok"
	case MemfdWrite:
		f := st.memfds[o.M]
		if f == nil {
			return "no memfd"
		}
		buf := pattern(int(Sizes[o.T]), int(o.N))
		off := int64(o.N) * 512
		if len(buf) > 0 && st.frozen(f) {
			buf = frozenPrefix(f, buf, off)
			if len(buf) == 0 {
				return "-1 EPERM" // as pwrite(2) returns it
			}
		}
		n, err := unix.Pwrite(int(f.Fd()), buf, off)
		return fmt.Sprintf("%d %s", n, errString(err))
	case MemfdTruncate:
		if f := st.memfds[o.M]; f != nil {
			if st.frozen(f) {
				if fi, err := f.Stat(); err == nil && fi.Size() != Sizes[o.T] {
					return "EPERM"
				}
			}
			return errString(unix.Ftruncate(int(f.Fd()), Sizes[o.T]))
		}
		return "no memfd"
	case MemfdSeal:
		if f := st.memfds[o.M]; f != nil {
			_, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, sealSets[o.N%uint8(len(sealSets))])
			return errString(err)
		}
		return "no memfd"
	}
	return "unknown operation"
}

// frozen tells whether the target says f's size is frozen.
func (st *state) frozen(f *os.File) bool {
	return st.tgt.Frozen != nil && st.tgt.Frozen(int(f.Fd()))
}

// frozenPrefix is the part of a write of buf at off into the frozen
// file f that the kernel writes: whole chunks up to the page boundaries,
// stopping before the first that would end past the file's size.
func frozenPrefix(f *os.File, buf []byte, off int64) []byte {
	fi, err := f.Stat()
	if err != nil {
		return buf
	}
	size, page := fi.Size(), int64(os.Getpagesize())
	pos := off
	for pos < off+int64(len(buf)) {
		chunk := min(page-pos%page, off+int64(len(buf))-pos)
		if pos+chunk > size {
			break
		}
		pos += chunk
	}
	return buf[:pos-off]
}

// memfdFlags is MemfdNew's flags: sealable when n is odd.
func memfdFlags(n uint8) int {
	f := unix.MFD_CLOEXEC
	if n%2 == 1 {
		f |= unix.MFD_ALLOW_SEALING
	}
	return f
}

// pattern is n bytes that differ with seed and position.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*7 + 1)
	}
	return b
}

// observe says what a retrieved memfd holds: size, a hash of its
// contents, its position, seals and status flags.
func observe(f *os.File) string {
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "fstat " + errString(err)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < st.Size; {
		n, err := unix.Pread(fd, buf[:min(int64(len(buf)), st.Size-off)], off)
		if n <= 0 || err != nil {
			fmt.Fprintf(h, "read error at %d: %v", off, err)
			break
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	pos, _ := unix.Seek(fd, 0, 1)
	seals, serr := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	sealStr := fmt.Sprintf("%#x", seals)
	if serr != nil {
		sealStr = errString(serr)
	}
	return fmt.Sprintf("size %d sha %s pos %d seals %s flags %#o mode %#o", st.Size,
		hex.EncodeToString(h.Sum(nil)[:6]), pos, sealStr, fl&^unix.O_LARGEFILE, st.Mode&0o7777)
}

// raw sends command o.M with size variant o.T on the device or a session.
func (st *state) raw(o Op) string {
	c := rawCommands[o.M%numRawCommands]
	size := rawSize(c, o.T)
	// The whole buffer is the request's memory, as a C program's struct
	// and what follows it are: a kernel may read past a short size
	// field's bytes, and the fake must be shown the same memory.
	buf := make([]byte, max(size, 8)+8)
	binary.NativeEndian.PutUint32(buf, uint32(size))
	switch c {
	case liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession:
		name := st.tgt.Prefix + "raw"
		if o.T == 5 {
			name = strings.Repeat("r", 70) // unterminated within the field
		}
		copy(buf[8:min(len(buf), 8+64)], name)
	case liveupdate.CmdFinish, liveupdate.CmdGetName:
		if o.T == 4 {
			binary.NativeEndian.PutUint32(buf[4:], 1) // reserved bits
		}
	}
	var err error
	if o.S == deviceSlot {
		if st.dev == nil {
			return "no device"
		}
		err = st.dev.RawIoctl(c.Request(), buf)
	} else {
		s := st.sessions[o.S]
		if s == nil {
			return "no session"
		}
		err = s.RawIoctl(c.Request(), buf)
	}
	out := buf[:size]
	if err == nil && (c == liveupdate.CmdCreateSession || c == liveupdate.CmdRetrieveSession || c == liveupdate.CmdRetrieveFD) && size >= 8 {
		fd := int(int32(binary.NativeEndian.Uint32(out[4:])))
		unix.Close(fd) // a new fd: released, and its number is no result
		out = append(append([]byte{}, out[:4]...), out[8:]...)
	}
	return fmt.Sprintf("%s %x", errString(err), out[:min(len(out), 80)])
}

// rawCommands are the commands Raw sends.
var rawCommands = []liveupdate.Command{
	liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession, liveupdate.CmdPreserveFD,
	liveupdate.CmdRetrieveFD, liveupdate.CmdFinish, liveupdate.CmdGetName,
}

// rawSize is the size field variant v of command c: 0, 3, the struct's
// size less one, the size, and the size plus 8 (zero-extended).
func rawSize(c liveupdate.Command, v uint8) int {
	k := int(c.Size())
	switch v % numRawSizes {
	case 0:
		return 0
	case 1:
		return 3
	case 2:
		return k - 1
	case 3, 4:
		return k
	}
	return k + 8
}

// errString is the errno of err, "ok" for nil.
func errString(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	if errors.Is(err, liveupdate.ErrInvalidName) {
		return "invalid name"
	}
	if errors.Is(err, liveupdate.ErrClosed) {
		return "closed"
	}
	return "error " + err.Error()
}

// RunStages is Run with the trace cut by stage: element s is what stage
// s did, ending with its live update's line.
func RunStages(tgt Target, p Program) []Trace {
	var out []Trace
	for stage := range p.Stages() {
		t, st := runStage(tgt, p, stage)
		if stage < p.Stages()-1 {
			if tgt.Kexec == nil {
				st.closeAll()
				return append(out, append(t, "kexec: the target cannot"))
			}
			t = append(t, "kexec -> "+errString(tgt.Kexec()))
		}
		st.closeAll()
		out = append(out, t)
	}
	return out
}
