//go:build linux

package conformance

import (
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func preserveCases() []testCase {
	return []testCase{
		{"token_EEXIST_within_session_reusable_in_another", preserveTokenScope},
		{"token_any_value", preserveTokenValues},
		{"same_file_EBUSY_anywhere", preserveSameFile},
		{"bad_fd_EBADF", preserveBadFD},
		{"unsupported_files_ENOENT", preserveUnsupported},
		{"memfds_accepted", preserveMemfds},
		{"token_checked_before_fd", preserveTokenBeforeFD},
		{"size_frozen_while_preserved", preserveSizeFrozen},
		{"o_path_fd_EBADF", preserveOPath},
	}
}

func preserveTokenScope(e *env) {
	d := e.open()
	s1 := e.create(d, e.name("tok1"))
	s2 := e.create(d, e.name("tok2"))
	m1, m2, m3 := e.memfd("1"), e.memfd("2"), e.memfd("3")
	e.mustExpect(s1.PreserveFD(fdOf(m1), 42), 0, "preserve memfd 1 under 42 in session 1")
	e.expect(s1.PreserveFD(fdOf(m2), 42), unix.EEXIST, "preserve memfd 2 under 42 in session 1")
	e.expect(s2.PreserveFD(fdOf(m2), 42), 0, "preserve memfd 2 under 42 in session 2")
	e.expect(s1.PreserveFD(fdOf(m3), 43), 0, "preserve memfd 3 under 43 in session 1 after the refusal")
}

func preserveTokenValues(e *env) {
	d := e.open()
	s := e.create(d, e.name("tokvals"))
	for _, tok := range []uint64{0, 1, 1 << 32, 1 << 63, math.MaxUint64} {
		e.expect(s.PreserveFD(fdOf(e.memfd("v")), tok), 0, "preserve under token 0x%x", tok)
		e.expect(s.PreserveFD(fdOf(e.memfd("w")), tok), unix.EEXIST, "preserve under token 0x%x again", tok)
	}
}

func preserveSameFile(e *env) {
	if !e.f.DoublePreserveBusy {
		e.Skip("target does not refuse double preservation (Features.DoublePreserveBusy)")
	}
	d := e.open()
	s1 := e.create(d, e.name("busy1"))
	s2 := e.create(d, e.name("busy2"))
	m := e.memfd("busy")
	e.mustExpect(s1.PreserveFD(fdOf(m), 1), 0, "preserve the memfd")
	e.expect(s1.PreserveFD(fdOf(m), 2), unix.EBUSY, "the same fd in the same session under another token")
	e.expect(s2.PreserveFD(fdOf(m), 1), unix.EBUSY, "the same fd in another session")
	dup, err := unix.FcntlInt(uintptr(fdOf(m)), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("dup: %v", err)
	}
	e.ownFD(dup)
	e.expect(s2.PreserveFD(dup, 3), unix.EBUSY, "a dup of the fd in another session")
	e.expect(s1.PreserveFD(dup, 3), unix.EBUSY, "a dup of the fd in the same session")
	re, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fdOf(m)), os.O_RDWR, 0)
	if err != nil {
		e.Fatalf("reopen the memfd through /proc: %v", err)
	}
	e.own(re)
	if !e.sameFile(fdOf(re), fdOf(m)) {
		e.Fatalf("the reopened memfd is another inode")
	}
	if !e.f.PreserveByInode {
		e.expect(s2.PreserveFD(fdOf(re), 4), 0, "the memfd reopened through /proc/self/fd (another open file; memfd-v1 has no inode identity)")
		return
	}
	e.expect(s2.PreserveFD(fdOf(re), 4), unix.EBUSY, "the memfd reopened through /proc/self/fd (same inode, another open file; memfd-v2)")
}

func preserveBadFD(e *env) {
	_, s := e.outgoing("badfd")
	bad := e.badFD()
	e.expect(s.PreserveFD(bad, 1), unix.EBADF, "preserve fd %d, not open", bad)
	err := s.PreserveFD(-1, 1)
	e.expect(err, unix.EBADF, "typed PreserveFD(-1)")
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.preserveArgs(16, 16, -1, 1)), unix.EBADF, "raw PRESERVE_FD of fd -1")
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.preserveArgs(16, 16, math.MinInt32, 1)), unix.EBADF, "raw PRESERVE_FD of fd INT_MIN")
	// A closed memfd: its number is not open any more.
	fd, err := unix.MemfdCreate("closed", unix.MFD_CLOEXEC)
	if err != nil {
		e.Fatalf("memfd_create: %v", err)
	}
	unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == unix.EBADF {
		e.expect(s.PreserveFD(fd, 1), unix.EBADF, "preserve a closed memfd's number")
	}
	e.checkPreservable(s, fdOf(e.memfd("x")), 1)
}

// unsupportedFiles returns files no handler preserves, by description.
func (e *env) unsupportedFiles(d *liveupdate.Device, s *liveupdate.Session) map[string]int {
	e.Helper()
	files := map[string]int{}
	openFile := func(what, path string, flag int) {
		f, err := os.OpenFile(path, flag|os.O_CREATE, 0o600)
		if err != nil {
			e.Logf("not checked: %s (%v)", what, err)
			return
		}
		files[what] = fdOf(e.own(f))
	}
	openFile("/dev/null", "/dev/null", os.O_RDWR)
	openFile("a regular file in t.TempDir()", filepath.Join(e.TempDir(), "regular"), os.O_RDWR)
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/shm", &sfs) == nil && sfs.Type == unix.TMPFS_MAGIC {
		p := filepath.Join("/dev/shm", e.name("shm"))
		openFile("a linked file on tmpfs (/dev/shm)", p, os.O_RDWR)
		e.Cleanup(func() { os.Remove(p) })
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		e.Fatalf("pipe: %v", err)
	}
	e.ownFD(p[0])
	e.ownFD(p[1])
	files["a pipe's read end"] = p[0]
	files["a pipe's write end"] = p[1]
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("socketpair: %v", err)
	}
	e.ownFD(sp[0])
	e.ownFD(sp[1])
	files["a unix socket"] = sp[0]
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		e.Cleanup(func() { l.Close() })
		if f, err := l.(*net.TCPListener).File(); err == nil {
			files["a TCP socket"] = fdOf(e.own(f))
		}
	}
	if fd, err := unix.MemfdCreate("hugetlb", unix.MFD_CLOEXEC|unix.MFD_HUGETLB); err == nil {
		e.ownFD(fd)
		files["a hugetlb memfd"] = fd
	} else {
		e.Logf("not checked: a hugetlb memfd (memfd_create MFD_HUGETLB: %v)", err)
	}
	if fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC); err == nil {
		e.ownFD(fd)
		files["an eventfd"] = fd
	}
	files["a session fd"] = s.Fd()
	files["the device fd"] = d.Fd()
	other := e.create(d, e.name("other"))
	files["another session's fd"] = other.Fd()
	return files
}

func preserveUnsupported(e *env) {
	d := e.open()
	s := e.create(d, e.name("unsupp"))
	files := e.unsupportedFiles(d, s)
	for _, what := range sortedKeys(files) {
		e.expect(s.PreserveFD(files[what], 0xDEAD), unix.ENOENT, "preserve %s", what)
	}
	// The refusals used no token.
	e.checkPreservable(s, fdOf(e.memfd("x")), 0xDEAD)
}

func preserveMemfds(e *env) {
	d := e.open()
	s := e.create(d, e.name("memfds"))
	e.expect(s.PreserveFD(fdOf(e.memfd("")), 1), 0, "preserve an empty memfd")
	e.expect(s.PreserveFD(fdOf(e.memfd("data")), 2), 0, "preserve a memfd with data")
	e.expect(s.PreserveFD(fdOf(e.memfdFlags("no cloexec", 0)), 3), 0, "preserve a memfd without MFD_CLOEXEC")
	e.expect(s.PreserveFD(fdOf(e.memfdFlags("sealable", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)), 4), 0,
		"preserve a memfd created with MFD_ALLOW_SEALING and no seals")
	big := e.memfd("")
	if err := big.Truncate(1 << 20); err != nil {
		e.Fatalf("ftruncate: %v", err)
	}
	e.expect(s.PreserveFD(fdOf(big), 5), 0, "preserve a sparse 1 MiB memfd")
	e.expect(s.Preserve(e.memfd("typed"), 6), 0, "Session.Preserve of an *os.File memfd")
}

func preserveTokenBeforeFD(e *env) {
	d := e.open()
	s := e.create(d, e.name("order"))
	used := e.memfd("used")
	e.mustExpect(s.PreserveFD(fdOf(used), 7), 0, "preserve under token 7")
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		e.Fatalf("open /dev/null: %v", err)
	}
	e.own(null)
	e.expect(s.PreserveFD(e.badFD(), 7), unix.EEXIST, "a closed fd under a used token")
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.preserveArgs(16, 16, -1, 7)), unix.EEXIST, "raw fd -1 under a used token")
	e.expect(s.PreserveFD(fdOf(null), 7), unix.EEXIST, "/dev/null under a used token")
	e.expect(s.PreserveFD(fdOf(used), 7), unix.EEXIST, "the preserved memfd again under its token")
}

func preserveSizeFrozen(e *env) {
	d := e.open()
	s := e.create(d, e.name("frozen"))
	m := e.memfd(strings.Repeat("z", 8192))
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	truncErr := unix.Ftruncate(fdOf(m), 4096)
	growErr := unix.Ftruncate(fdOf(m), 65536)
	fallocErr := unix.Fallocate(fdOf(m), 0, 0, 1<<20)
	punchErr := unix.Fallocate(fdOf(m), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096)
	_, extendErr := m.WriteAt([]byte("past the end"), 1<<20)
	_, inErr := m.WriteAt([]byte("within"), 100)
	if e.f.SizeFreezeEnforced {
		e.expect(truncErr, unix.EPERM, "shrink a preserved memfd")
		e.expect(growErr, unix.EPERM, "grow a preserved memfd")
		e.expect(fallocErr, unix.EPERM, "fallocate past the end of a preserved memfd")
		e.expect(punchErr, unix.EPERM, "punch a hole in a preserved memfd (FALLOC_FL_KEEP_SIZE)")
		e.expect(extendErr, unix.EPERM, "write past the end of a preserved memfd")
		e.expect(inErr, 0, "write within a preserved memfd")
		if got := e.contents(m); got != strings.Repeat("z", 100)+"within"+strings.Repeat("z", 8192-106) {
			e.Errorf("preserved memfd holds %d bytes, want the 8192 it had, with only the write within (size and pages frozen)", len(got))
		}
	} else {
		e.Logf("target %q does not freeze preserved memfds (Features.SizeFreezeEnforced false): shrink: %v, grow: %v, fallocate: %v, punch a hole: %v, write past the end: %v, write within: %v",
			e.tgt.Name, truncErr, growErr, fallocErr, punchErr, extendErr, inErr)
	}
	e.mustExpect(s.Close(), 0, "close the session")
	e.eventually("ftruncate of the memfd after its session was closed", func() error {
		if err := unix.Ftruncate(fdOf(m), 100); err != nil {
			return err
		}
		return unix.Ftruncate(fdOf(m), 200000)
	})
	if err := unix.Fallocate(fdOf(m), 0, 0, 300000); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		e.Errorf("fallocate after the session was closed: %v", err)
	}
}

// preserveOPath: luo_preserve_file takes the file with fget, which does
// not return O_PATH files (fs/file.c: fget masks FMODE_PATH), so an O_PATH
// fd of a memfd is EBADF, as a closed fd is, and uses no token.
func preserveOPath(e *env) {
	_, s := e.outgoing("opath")
	m := e.memfd("reached only by path")
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fdOf(m)), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("open the memfd O_PATH through /proc/self/fd: %v", err)
	}
	e.ownFD(fd)
	e.expect(s.PreserveFD(fd, 1), unix.EBADF, "preserve an O_PATH fd of a memfd")
	e.checkPreservable(s, fdOf(m), 1)
}
