//go:build linux

package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/internal/luoabi"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// env is what a case runs with: its subtest, the target, and the devices
// and sessions it opened (closed at the end of the case, or at a kexec; in
// a split run, sessions a later stage needs are kept for the next boot).
type env struct {
	*testing.T
	tgt Target
	f   Features
	su  *suite
	id  string // GROUP/CASE

	mu       sync.Mutex
	devices  []*liveupdate.Device
	sessions []*liveupdate.Session
	skipMsg  string

	// Split runs only.
	staged   bool                         // the case called stages
	phase    int                          // 0 before stages, s+1 in stage s
	names    int                          // names made in this phase
	kept     map[*liveupdate.Session]bool // handed to the next boot
	keptFDs  map[int]bool
	keptAddr map[string]bool  // socket addresses of kept fds
	owned    map[fileKey]bool // inodes of files the case made or owned
}

// fileKey identifies a file by its inode.
type fileKey struct{ dev, ino uint64 }

var native = binary.NativeEndian

// releaseTimeout bounds how long a case waits for something the target does
// asynchronously: releasing a closed session (a fake kernel reads the close
// from its socket; the kernel defers the final fput), or closing its own
// descriptors afterwards.
const releaseTimeout = 5 * time.Second

// seq makes session names unique within a process.
var seq struct {
	sync.Mutex
	n int
}

// name returns a session name unique to this run: "luo-ct-PID-N-tag",
// shortened to MaxNameLen bytes. In a split run it is
// "luo-ct-RUN-CASE-P.N-tag" instead, the same in every boot: RUN is
// Split.RunID, CASE a hash of the case's name, P the phase of the case (0
// before it calls stages, S+1 in its stage S) and N counts the names made
// in that phase. Names a case makes before stages agree across boots;
// those made in a stage are its own.
func (e *env) name(tag string) string {
	var s string
	if sp := e.tgt.Split; sp != nil {
		e.mu.Lock()
		e.names++
		phase, n := e.phase, e.names
		e.mu.Unlock()
		s = "luo-ct-" + sp.RunID + "-" + caseHash(e.id) + "-" + strconv.Itoa(phase) + "." + strconv.Itoa(n) + "-" + tag
	} else {
		seq.Lock()
		seq.n++
		n := seq.n
		seq.Unlock()
		s = "luo-ct-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(n) + "-" + tag
	}
	if len(s) > liveupdate.MaxNameLen {
		s = s[:liveupdate.MaxNameLen]
	}
	return s
}

// caseHash returns 8 hex digits of FNV-1a of the case's name id: its part
// of the session names of a split run.
func caseHash(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%08x", h.Sum32())
}

// open opens the target's device; it is closed when the case ends.
func (e *env) open() *liveupdate.Device {
	e.Helper()
	d, err := e.tgt.Open()
	if err != nil {
		e.Fatalf("open the %s device: %v", e.tgt.Name, err)
	}
	e.trackDevice(d)
	return d
}

func (e *env) trackDevice(d *liveupdate.Device) {
	e.mu.Lock()
	e.devices = append(e.devices, d)
	e.mu.Unlock()
	e.Cleanup(func() { d.Close() })
}

// track makes s closed when the case ends (or at a kexec), unless a split
// run keeps it for the next boot.
func (e *env) track(s *liveupdate.Session) *liveupdate.Session {
	e.mu.Lock()
	e.sessions = append(e.sessions, s)
	e.mu.Unlock()
	e.Cleanup(func() {
		e.mu.Lock()
		kept := e.kept[s]
		e.mu.Unlock()
		if !kept {
			s.Close()
		}
	})
	return s
}

// create creates the outgoing session name, failing the case if it cannot.
func (e *env) create(d *liveupdate.Device, name string) *liveupdate.Session {
	e.Helper()
	s, err := d.CreateSession(name)
	if err != nil {
		e.Fatalf("create session %q: %v", name, err)
	}
	return e.track(s)
}

// retrieve retrieves the incoming session name, failing the case if it
// cannot.
func (e *env) retrieve(d *liveupdate.Device, name string) *liveupdate.Session {
	e.Helper()
	s, err := d.RetrieveSession(name)
	if err != nil {
		e.Fatalf("retrieve session %q: %v", name, err)
	}
	return e.track(s)
}

// ownFD makes fd closed when the case ends and returns a function that
// closes it earlier; either closes it once.
func (e *env) ownFD(fd int) (closeFD func() error) {
	var once sync.Once
	var err error
	closeFD = func() error {
		once.Do(func() { err = unix.Close(fd) })
		return err
	}
	e.Cleanup(func() { closeFD() })
	return closeFD
}

// own makes f closed when the case ends.
func (e *env) own(f *os.File) *os.File {
	e.noteOwned(fdOf(f))
	e.Cleanup(func() { f.Close() })
	return f
}

// noteOwned remembers, in a split run, the inode of a file the case owns:
// a fake kernel in this process holds its own descriptor of a file
// preserved in a session kept for the next boot.
func (e *env) noteOwned(fd int) {
	if e.tgt.Split == nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	e.mu.Lock()
	if e.owned == nil {
		e.owned = map[fileKey]bool{}
	}
	e.owned[fileKey{uint64(st.Dev), st.Ino}] = true
	e.mu.Unlock()
}

// memfd returns a new close-on-exec memfd holding data.
func (e *env) memfd(data string) *os.File {
	e.Helper()
	return e.memfdFlags(data, unix.MFD_CLOEXEC)
}

func (e *env) memfdFlags(data string, flags int) *os.File {
	e.Helper()
	fd, err := unix.MemfdCreate("luo-conformance", flags)
	if err != nil {
		e.Fatalf("memfd_create: %v", err)
	}
	f := e.own(os.NewFile(uintptr(fd), "memfd"))
	if data != "" {
		if _, err := f.WriteAt([]byte(data), 0); err != nil {
			e.Fatalf("write memfd: %v", err)
		}
	}
	return f
}

// fdOf returns the descriptor of f.
func fdOf(f *os.File) int { return int(f.Fd()) }

// contents reads all of f from offset 0.
func (e *env) contents(f *os.File) string {
	e.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fdOf(f), &st); err != nil {
		e.Fatalf("fstat: %v", err)
	}
	b := make([]byte, st.Size)
	if n, err := f.ReadAt(b, 0); err != nil && n != len(b) {
		e.Fatalf("read %s: %v", f.Name(), err)
	}
	return string(b)
}

// badFD returns a descriptor number that is not open.
func (e *env) badFD() int {
	e.Helper()
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		e.Fatalf("getrlimit: %v", err)
	}
	// The kernel hands out the lowest free number; the highest one
	// allowed is never handed out while lower ones are free.
	fd := int(min(r.Cur, 1<<20)) - 1
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		e.Fatalf("fd %d should not be open (F_GETFD: %v)", fd, err)
	}
	return fd
}

// Skip is testing.T's Skip, remembering the reason for the results.
func (e *env) Skip(args ...any) {
	e.Helper()
	e.noteSkip(fmt.Sprintln(args...))
	e.T.Skip(args...)
}

// Skipf is testing.T's Skipf, remembering the reason for the results.
func (e *env) Skipf(format string, args ...any) {
	e.Helper()
	e.noteSkip(fmt.Sprintf(format, args...))
	e.T.Skipf(format, args...)
}

func (e *env) noteSkip(msg string) {
	e.mu.Lock()
	e.skipMsg = msg
	e.mu.Unlock()
}

func (e *env) skipReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.skipMsg
}

// needKexec skips the case when the target cannot kexec, in-process or
// between the boots of a split run.
func (e *env) needKexec() {
	e.Helper()
	if e.tgt.Kexec == nil && e.tgt.Split == nil {
		e.Skipf("needs incoming sessions, and target %q cannot kexec (Target.Kexec and Target.Split are nil)", e.tgt.Name)
	}
}

// kexec performs a live update as an agent would: it closes the devices the
// case opened, kexecs with the sessions still open, then closes the old
// kernel's session handles (which must not change what the new kernel got).
func (e *env) kexec() {
	e.Helper()
	e.needKexec()
	if e.tgt.Kexec == nil {
		e.Fatalf("conformance: case %s kexecs in-process in a split run (Target.Kexec is nil): it needs stages", e.id)
	}
	e.mu.Lock()
	devs, sess := e.devices, e.sessions
	e.devices, e.sessions = nil, nil
	e.mu.Unlock()
	for _, d := range devs {
		d.Close()
	}
	if err := e.tgt.Kexec(); err != nil {
		e.Fatalf("kexec: %v", err)
	}
	for _, s := range sess {
		s.Close()
	}
}

// stages runs a case across live updates: fns[0] on the first kernel,
// fns[1] on the kernel the first live update boots, and so on, each with a
// device of its kernel opened for it. Between two stages the case's
// devices are closed and its sessions stay open through the kexec.
//
// Stages share nothing but what the kernel carries and what the case
// computed before it called stages: in a split run each live update is a
// real kexec, and each stage runs in another process on another kernel
// (the boot of the stage's index, which runs only that stage). There the
// sessions open at the end of a stage other than the last are kept for the
// next boot (Split.Hold) instead of closed. A case skips before it calls
// stages, never in a stage: a later boot would run the next stage anyway.
//
// The case must have an entry in stagePlan with len(fns) stages.
func (e *env) stages(fns ...func(d *liveupdate.Device)) {
	e.Helper()
	if n := stageCount(e.id); n != len(fns) {
		e.Fatalf("conformance: case %s calls stages with %d stages, but stagePlan (plan.go) gives it %d: a split run plans its boots from stagePlan", e.id, len(fns), n)
	}
	e.needKexec()
	if sp := e.tgt.Split; sp != nil {
		i := sp.Boot
		e.mu.Lock()
		e.staged = true
		e.phase, e.names = i+1, 0
		e.mu.Unlock()
		fns[i](e.open())
		if i+1 < len(fns) {
			e.keepSessions()
		}
		return
	}
	for i, fn := range fns {
		if i > 0 {
			e.kexec()
		}
		fn(e.open())
	}
}

// keepSessions closes the case's devices and hands its open sessions to
// the suite, for the next boot of a split run.
func (e *env) keepSessions() {
	e.mu.Lock()
	devs, sess := e.devices, e.sessions
	e.devices, e.sessions = nil, nil
	e.mu.Unlock()
	for _, d := range devs {
		d.Close()
	}
	var kept []*liveupdate.Session
	for _, s := range sess {
		fd := s.Fd()
		if fd < 0 {
			continue // the case closed it
		}
		kept = append(kept, s)
		e.mu.Lock()
		if e.kept == nil {
			e.kept, e.keptFDs, e.keptAddr = map[*liveupdate.Session]bool{}, map[int]bool{}, map[string]bool{}
		}
		e.kept[s] = true
		e.keptFDs[fd] = true
		if sa, err := unix.Getsockname(fd); err == nil {
			if a, ok := sa.(*unix.SockaddrUnix); ok && a.Name != "" {
				e.keptAddr[a.Name] = true
			}
		}
		e.mu.Unlock()
	}
	e.su.keep(kept...)
}

// heldFD reports whether fd, open after the case and not before it, is
// one the split run keeps for the next boot rather than a leak: the fd of a
// kept session; a socket whose peer is one (a fake kernel's end of it);
// or a file the case made or owned (a fake kernel's descriptor of a file
// preserved in a kept session: the case's own copies are closed by then).
func (e *env) heldFD(fd int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kept == nil {
		return false
	}
	if e.keptFDs[fd] {
		return true
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		if a, ok := sa.(*unix.SockaddrUnix); ok && e.keptAddr[a.Name] {
			return true
		}
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && e.owned[fileKey{uint64(st.Dev), st.Ino}]
}

// eventually calls f until it returns nil, for up to releaseTimeout, and
// fails the case with f's last error if it never does.
func (e *env) eventually(what string, f func() error) {
	e.Helper()
	if err := poll(f); err != nil {
		e.Fatalf("%s: still %v after %v", what, err, releaseTimeout)
	}
}

func poll(f func() error) error {
	deadline := time.Now().Add(releaseTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
	}
}

// waitReleased waits until the outgoing session name is gone: until a
// session of that name can be created again (the new one is closed).
func (e *env) waitReleased(d *liveupdate.Device, name string) {
	e.Helper()
	e.eventually("the released session "+strconv.Quote(name)+" to go away", func() error {
		s, err := d.CreateSession(name)
		if err != nil {
			return err
		}
		return s.Close()
	})
}

// retrieveHolds retrieves token from the incoming session in, which must
// succeed (the failure is reported as format says), and checks that the
// file holds want. The file is closed when the case ends.
func (e *env) retrieveHolds(in *liveupdate.Session, token uint64, want string, format string, args ...any) {
	e.Helper()
	f, err := in.Retrieve(token)
	if !e.expect(err, 0, format, args...) {
		return
	}
	e.own(f)
	if got := e.contents(f); got != want {
		e.Errorf("%s: token %d holds %d bytes %.40q, want %d bytes %.40q", fmt.Sprintf(format, args...), token, len(got), got, len(want), want)
	}
}

// waitIncomingGone waits until the incoming session name, whose last fd
// the case closed, is gone: until retrieving it gives ENOENT.
func (e *env) waitIncomingGone(d *liveupdate.Device, name string) {
	e.Helper()
	e.eventually("retrieve session "+strconv.Quote(name)+" after the incoming session was closed to give ENOENT", func() error {
		s, err := d.RetrieveSession(name)
		if err == nil {
			s.Close()
			return errSucceeded
		}
		if isErrno(err, unix.ENOENT) {
			return nil
		}
		return err
	})
}

// stillThere checks that the outgoing session name still exists: creating
// it fails with EEXIST, also a little later.
func (e *env) stillThere(d *liveupdate.Device, name, why string) {
	e.Helper()
	for i := range 2 {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		s, err := d.CreateSession(name)
		if err == nil {
			s.Close()
			e.Fatalf("session %q was released %s", name, why)
		}
		if !errors.Is(err, unix.EEXIST) {
			e.Fatalf("create session %q to see whether it is still there: got %v, want EEXIST", name, err)
		}
	}
}

// errnoName returns the symbolic name of errno, such as "EINVAL".
func errnoName(errno syscall.Errno) string {
	if errno == 0 {
		return "success"
	}
	if n := unix.ErrnoName(errno); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(errno))
}

// expect checks that err matches want (errors.Is), or is nil when want is 0.
func (e *env) expect(err error, want syscall.Errno, format string, args ...any) bool {
	e.Helper()
	what := fmt.Sprintf(format, args...)
	switch {
	case want == 0 && err != nil:
		e.Errorf("%s: got %v, want success", what, err)
		return false
	case want == 0:
		return true
	case err == nil:
		e.Errorf("%s: succeeded, want %s", what, errnoName(want))
		return false
	case !errors.Is(err, want):
		e.Errorf("%s: got %v, want %s", what, err, errnoName(want))
		return false
	}
	return true
}

// mustExpect is expect, stopping the case on a mismatch.
func (e *env) mustExpect(err error, want syscall.Errno, format string, args ...any) {
	e.Helper()
	if !e.expect(err, want, format, args...) {
		e.FailNow()
	}
}

// buf returns n bytes of memory directly followed by an inaccessible page,
// so that the kernel, like a fake kernel, faults (EFAULT) on reading or
// writing even one byte past them.
func (e *env) buf(n int) []byte {
	e.Helper()
	ps := os.Getpagesize()
	pages := (n+ps-1)/ps + 1
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		e.Fatalf("mmap: %v", err)
	}
	end := (pages - 1) * ps
	if err := unix.Mprotect(mem[end:], unix.PROT_NONE); err != nil {
		unix.Munmap(mem)
		e.Fatalf("mprotect: %v", err)
	}
	e.Cleanup(func() { unix.Munmap(mem) })
	return mem[end-n : end : end]
}

// args returns an n-byte request buffer (see buf) whose size field says
// size. n must be at least 4.
func (e *env) args(n int, size uint32) []byte {
	e.Helper()
	b := e.buf(n)
	native.PutUint32(b, size)
	return b
}

// sessionArgs returns a create/retrieve session request of n bytes with the
// given size field and name bytes (copied as they are, as far as they fit:
// no NUL is added).
func (e *env) sessionArgs(n int, size uint32, name []byte) []byte {
	e.Helper()
	b := e.args(n, size)
	native.PutUint32(b[4:], ^uint32(0)) // fd: -1
	copy(b[8:min(len(b), 8+liveupdate.SessionNameLen)], name)
	return b
}

// preserveArgs returns a PRESERVE_FD (or RETRIEVE_FD) request of n bytes.
func (e *env) preserveArgs(n int, size uint32, fd int32, token uint64) []byte {
	e.Helper()
	b := e.args(n, size)
	native.PutUint32(b[4:], uint32(fd))
	native.PutUint64(b[8:], token)
	return b
}

// rawCreate creates the session name through Device.RawIoctl with a
// well-formed request, returning the new fd (closed when the case ends).
func (e *env) rawCreate(d *liveupdate.Device, name string) int {
	e.Helper()
	b := e.sessionArgs(liveupdate.SizeofCreateSession, liveupdate.SizeofCreateSession, []byte(name+"\x00"))
	if err := d.RawIoctl(liveupdate.CmdCreateSession.Request(), b); err != nil {
		e.Fatalf("raw CREATE_SESSION %q: %v", name, err)
	}
	fd := int(int32(native.Uint32(b[4:])))
	e.ownFD(fd)
	return fd
}

// rawGetName issues GET_NAME with a zeroed 72-byte request and returns the
// name the reply carries.
func (e *env) rawGetName(s *liveupdate.Session) (string, error) {
	e.Helper()
	b := e.args(liveupdate.SizeofGetName, liveupdate.SizeofGetName)
	if err := s.RawIoctl(liveupdate.CmdGetName.Request(), b); err != nil {
		return "", err
	}
	var a liveupdate.GetNameArgs
	if err := a.Decode(b); err != nil {
		return "", err
	}
	name, err := liveupdate.NameFromBytes(&a.Name)
	if err != nil {
		return "", fmt.Errorf("GET_NAME replied with a malformed name %q", name)
	}
	return name, nil
}

// wrongEncodings returns request words with the nr and type of c but a
// different direction or size encoding: the kernel compares the whole word,
// so each must fail with ENOTTY.
func wrongEncodings(c liveupdate.Command) map[string]uint32 {
	req := c.Request()
	other := luoabi.IOCDir29
	if luoabi.NativeIOC == luoabi.IOCDir29 {
		other = luoabi.IOCGeneric
	}
	return map[string]uint32{
		"bit 29 flipped":           req ^ 1<<29,
		"_IOWR-style size field":   req | c.Size()<<16,
		"other architecture's _IO": other.Request(c),
		"another ioctl type":       luoabi.NativeIOC.IO(liveupdate.IoctlType+1, uint8(c)),
	}
}

// sortedKeys returns m's keys in order, for deterministic loops.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkFDs fails t when the process holds more descriptors than it did
// before (the snapshot), waiting for the target to close those it held for
// released sessions. Descriptors new since before for which held (when not
// nil) reports true are not counted.
func checkFDs(t *testing.T, before map[int]string, held func(fd int) bool) {
	t.Helper()
	if before == nil {
		return // no /proc
	}
	var after map[int]string
	err := poll(func() error {
		after = withoutHeld(before, fdtest.Table(), held)
		if len(after) > len(before) {
			return errors.New("more")
		}
		return nil
	})
	if err == nil {
		return
	}
	leaked := fdtest.Leaked(before, after)
	if len(leaked) > 8 {
		leaked = append(leaked[:8], "... ("+strconv.Itoa(len(leaked)-8)+" more)")
	}
	t.Errorf("descriptor leak: %d open before the case, %d after it (and its sessions) were closed; new: %s",
		len(before), len(after), strings.Join(leaked, ", "))
}

// withoutHeld returns after without the descriptors, new since before,
// for which held (when not nil) reports true.
func withoutHeld(before, after map[int]string, held func(fd int) bool) map[int]string {
	if held == nil {
		return after
	}
	for fd, link := range after {
		if before[fd] != link && held(fd) {
			delete(after, fd)
		}
	}
	return after
}

// cloexec reports whether fd is close-on-exec.
func (e *env) cloexec(fd int, what string) {
	e.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		e.Errorf("F_GETFD on %s (fd %d): %v", what, fd, err)
		return
	}
	if flags&unix.FD_CLOEXEC == 0 {
		e.Errorf("%s (fd %d) is not close-on-exec", what, fd)
	}
}

// sameFile reports whether two descriptors refer to the same inode.
func (e *env) sameFile(a, b int) bool {
	e.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		e.Fatalf("fstat %d: %v", a, err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		e.Fatalf("fstat %d: %v", b, err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// withTimeout runs f and fails the case if it does not return within
// releaseTimeout (a call that hangs instead of failing).
func (e *env) withTimeout(what string, f func() error) error {
	e.Helper()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(releaseTimeout):
		e.Fatalf("%s: no answer after %v", what, releaseTimeout)
		return nil
	}
}

// needFDs raises RLIMIT_NOFILE so that n more descriptors fit, skipping the
// case when that is not permitted.
func (e *env) needFDs(n uint64) {
	e.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		e.Fatalf("getrlimit: %v", err)
	}
	want := n + uint64(len(fdtest.Table())) + 64
	if old.Cur >= want {
		return
	}
	r := unix.Rlimit{Cur: want, Max: max(old.Max, want)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		if errors.Is(err, unix.EPERM) {
			e.Skipf("needs RLIMIT_NOFILE %d (have %d/%d) and may not raise it: %v", want, old.Cur, old.Max, err)
		}
		e.Fatalf("setrlimit: %v", err)
	}
	e.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

// errSucceeded is what a polled call that should fail returns when it
// succeeded.
var errSucceeded = errors.New("succeeded")

// isErrno reports whether err matches errno.
func isErrno(err error, errno syscall.Errno) bool { return errors.Is(err, errno) }
