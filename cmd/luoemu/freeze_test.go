//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func init() {
	testHelpers["freeze"] = freezeHelper
	testHelpers["freeze-off"] = freezeOffHelper
}

// checker collects a helper's failed expectations.
type checker struct{ failed []string }

func (c *checker) errorf(format string, args ...any) {
	c.failed = append(c.failed, fmt.Sprintf(format, args...))
}

// errno checks that a call failed with want (0: succeeded).
func (c *checker) errno(what string, err error, want unix.Errno) {
	var got unix.Errno
	if err != nil && !errors.As(err, &got) {
		c.errorf("%s: %v, not an errno", what, err)
		return
	}
	if got != want {
		c.errorf("%s: errno %v (%d), want %v (%d)", what, got, int(got), want, int(want))
	}
}

// count checks a write's result.
func (c *checker) count(what string, n int, err error, want int) {
	if err != nil || n != want {
		c.errorf("%s = %d, %v; want %d", what, n, err, want)
	}
}

func (c *checker) size(what string, fd int, want int64) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != want {
		c.errorf("%s: size %d (%v), want %d", what, st.Size, err, want)
	}
}

func (c *checker) pos(what string, fd int, want int64) {
	if p, err := unix.Seek(fd, 0, unix.SEEK_CUR); err != nil || p != want {
		c.errorf("%s: position %d (%v), want %d", what, p, err, want)
	}
}

func (c *checker) exit() int {
	for _, f := range c.failed {
		fmt.Fprintln(os.Stderr, "FAIL:", f)
	}
	if len(c.failed) > 0 {
		return 1
	}
	fmt.Println("freeze helper: ok")
	return 0
}

// memfdOf makes a memfd of size bytes, every byte 'a'.
func memfdOf(size int) (int, error) {
	fd, err := unix.MemfdCreate("freeze", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if _, err := unix.Pwrite(fd, bytes.Repeat([]byte{'a'}, size), 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// freezeHelper runs under luoemu: it preserves memfds and checks that the
// calls Linux 7.2 refuses on them are refused, with its errnos and
// partial counts, and that they work again once the session is closed.
func freezeHelper(args []string) int {
	var c checker
	ps := os.Getpagesize()
	d, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer d.Close()
	s, err := d.CreateSession("freeze")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	odd, aligned, free := 2*ps+100, 2*ps, ps
	m, err := memfdOf(odd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m2, err := memfdOf(aligned)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	other, err := memfdOf(free)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for i, fd := range []int{m, m2} {
		if err := s.PreserveFD(fd, uint64(i+1)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	x := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	self := func(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

	// Size changes.
	c.errno("ftruncate up", unix.Ftruncate(m, int64(odd+1)), unix.EPERM)
	c.errno("ftruncate down", unix.Ftruncate(m, int64(odd-1)), unix.EPERM)
	c.errno("ftruncate to 0", unix.Ftruncate(m, 0), unix.EPERM)
	c.errno("ftruncate to the same size", unix.Ftruncate(m, int64(odd)), 0)
	c.errno("ftruncate negative", unix.Ftruncate(m, -1), unix.EINVAL)
	c.errno("truncate(/proc/self/fd) up", unix.Truncate(self(m), int64(odd+ps)), unix.EPERM)
	c.errno("truncate(/proc/self/fd) same", unix.Truncate(self(m), int64(odd)), 0)
	c.errno("truncate(/proc/thread-self/fd)", unix.Truncate(fmt.Sprintf("/proc/thread-self/fd/%d", m), 1), unix.EPERM)
	c.errno("truncate(/proc/self/fd) negative", unix.Truncate(self(m), -1), unix.EINVAL)
	c.errno("fallocate", unix.Fallocate(m, 0, 0, 10), unix.EPERM)
	c.errno("fallocate past the end", unix.Fallocate(m, 0, int64(odd), 10), unix.EPERM)
	c.errno("fallocate KEEP_SIZE", unix.Fallocate(m, unix.FALLOC_FL_KEEP_SIZE, 0, 10), unix.EPERM)
	c.errno("fallocate PUNCH_HOLE", unix.Fallocate(m, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, int64(ps)), unix.EPERM)
	c.errno("fallocate ZERO_RANGE (not shmem's)", unix.Fallocate(m, unix.FALLOC_FL_ZERO_RANGE, 0, 10), unix.EOPNOTSUPP)
	c.errno("fallocate len 0", unix.Fallocate(m, 0, 0, 0), unix.EINVAL)
	if fd, err := unix.Open(self(m), unix.O_RDWR|unix.O_TRUNC|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		c.errorf("open O_TRUNC of the frozen memfd succeeded")
	} else {
		c.errno("open O_TRUNC", err, unix.EPERM)
	}
	c.size("after the refused size changes", m, int64(odd))

	// Writes: within, at the end, crossing.
	n, err := unix.Pwrite(m, x(3), 0)
	c.count("pwrite within", n, err, 3)
	n, err = unix.Pwrite(m, x(1), int64(odd))
	c.errno(fmt.Sprintf("pwrite at the end (%d, %d)", n, 0), err, unix.EPERM)
	unix.Seek(m, int64(odd), unix.SEEK_SET)
	_, err = unix.Write(m, x(1))
	c.errno("write at the end", err, unix.EPERM)
	c.pos("after the refused write", m, int64(odd))
	// Crossing, from just before a page boundary: the first chunk
	// ends at the boundary, within the size; the next would end past it.
	unix.Seek(m, int64(2*ps-10), unix.SEEK_SET)
	n, err = unix.Write(m, x(200))
	c.count("write across the end of the odd memfd", n, err, 10)
	c.pos("after the crossing write", m, int64(2*ps))
	// Within the last, partial page: its chunk ends past the size.
	n, err = unix.Pwrite(m, x(100), int64(2*ps+50))
	c.errno(fmt.Sprintf("pwrite across the end within the last page (%d)", n), err, unix.EPERM)
	// The aligned memfd: a crossing write stops at the end.
	unix.Seek(m2, int64(aligned-10), unix.SEEK_SET)
	n, err = unix.Write(m2, x(20))
	c.count("write across the end", n, err, 10)
	c.pos("after it", m2, int64(aligned))
	n, err = unix.Pwrite(m2, x(ps+20), int64(aligned-ps-5))
	c.count("pwrite across the end", n, err, ps+5)
	c.pos("after the pwrite", m2, int64(aligned))
	unix.Seek(m2, int64(aligned-3), unix.SEEK_SET)
	n, err = unix.Writev(m2, [][]byte{x(2), x(5)})
	c.count("writev across the end", n, err, 3)
	n, err = unix.Pwritev(m2, [][]byte{x(1), x(0), x(9)}, int64(aligned-4))
	c.count("pwritev across the end", n, err, 4)
	unix.Seek(m2, int64(aligned-6), unix.SEEK_SET)
	n, err = unix.Pwritev2(m2, [][]byte{x(16)}, -1, 0)
	c.count("pwritev2(-1) across the end", n, err, 6)
	c.pos("after pwritev2(-1)", m2, int64(aligned))
	n, err = unix.Pwritev2(m2, [][]byte{x(16)}, 0, unix.RWF_APPEND)
	c.errno(fmt.Sprintf("pwritev2 RWF_APPEND (%d)", n), err, unix.EPERM)
	n, err = unix.Pwritev2(m2, [][]byte{x(16)}, 0, unix.RWF_NOWAIT)
	c.errno(fmt.Sprintf("pwritev2 RWF_NOWAIT (%d)", n), err, unix.EOPNOTSUPP)
	c.size("the aligned memfd after the writes", m2, int64(aligned))
	// What the crossing writes wrote is there.
	got := make([]byte, 16)
	unix.Pread(m2, got, int64(aligned-16))
	if !bytes.Equal(got, x(16)) {
		c.errorf("the aligned memfd's last bytes: %q", got)
	}
	// A buffer that faults half way: the bytes before the fault.
	buf, err := unix.Mmap(-1, 0, 2*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := unix.Mprotect(buf[ps:], unix.PROT_NONE); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, err = unix.Pwrite(m2, unsafe.Slice(&buf[0], 2*ps+10), 0)
	c.count("pwrite across the end from a buffer that faults after a page", n, err, ps)
	// O_APPEND: at the end.
	app, err := unix.Open(self(m2), unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		c.errorf("open O_APPEND: %v", err)
	} else {
		_, err = unix.Write(app, x(1))
		c.errno("write O_APPEND", err, unix.EPERM)
		_, err = unix.Pwrite(app, x(1), 0) // O_APPEND makes pwrite append too
		c.errno("pwrite O_APPEND", err, unix.EPERM)
		n, err = unix.Pwritev2(app, [][]byte{x(4)}, int64(aligned-2), unix.RWF_NOAPPEND)
		c.count("pwritev2 RWF_NOAPPEND across the end", n, err, 2)
		unix.Close(app)
	}
	// Copies into the frozen memfd at its end.
	unix.Seek(other, 0, unix.SEEK_SET)
	unix.Seek(m2, int64(aligned), unix.SEEK_SET)
	n, err = unix.CopyFileRange(other, nil, m2, nil, 10, 0)
	c.errno(fmt.Sprintf("copy_file_range to the end (%d)", n), err, unix.EPERM)
	n, err = unix.Sendfile(m2, other, nil, 10)
	c.errno(fmt.Sprintf("sendfile to the end (%d)", n), err, unix.EPERM)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	unix.Write(p[1], x(10))
	nn, err := unix.Splice(p[0], nil, m2, nil, 10, 0)
	c.errno(fmt.Sprintf("splice to the end (%d)", nn), err, unix.EPERM)
	off := int64(0)
	nn, err = unix.Splice(p[0], nil, m2, &off, 10, 0)
	c.count("splice within", int(nn), err, 10)
	c.size("the aligned memfd after the copies", m2, int64(aligned))

	// RLIMIT_FSIZE is checked before the flag: SIGXFSZ (ignored here)
	// and EFBIG, not EPERM.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	signal.Ignore(unix.SIGXFSZ)
	lim := unix.Rlimit{Cur: uint64(3 * ps), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c.errno("ftruncate past RLIMIT_FSIZE", unix.Ftruncate(m2, int64(4*ps)), unix.EFBIG)
	c.errno("ftruncate within RLIMIT_FSIZE", unix.Ftruncate(m2, int64(3*ps)), unix.EPERM)
	_, err = unix.Pwrite(m2, x(1), int64(3*ps))
	c.errno("pwrite at RLIMIT_FSIZE", err, unix.EFBIG)
	_, err = unix.Pwrite(m2, x(1), int64(3*ps-1))
	c.errno("pwrite below RLIMIT_FSIZE", err, unix.EPERM)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	// A memfd never preserved is unaffected.
	c.errno("ftruncate of another memfd", unix.Ftruncate(other, int64(free+1)), 0)
	n, err = unix.Pwrite(other, x(10), int64(free+1))
	c.count("pwrite past the end of another memfd", n, err, 10)
	c.errno("fallocate of another memfd", unix.Fallocate(other, 0, 0, int64(4*ps)), 0)
	if fd, err := unix.Open(self(other), unix.O_RDWR|unix.O_TRUNC|unix.O_CLOEXEC, 0); err != nil {
		c.errorf("open O_TRUNC of another memfd: %v", err)
	} else {
		unix.Close(fd)
		c.size("another memfd after an O_TRUNC open", other, 0)
	}

	// Unpreserved: everything works again.
	if err := s.Close(); err != nil {
		c.errorf("close the session: %v", err)
	}
	c.errno("ftruncate after the close", unix.Ftruncate(m, int64(odd+1)), 0)
	c.errno("fallocate after the close", unix.Fallocate(m, 0, 0, int64(4*ps)), 0)
	n, err = unix.Pwrite(m2, x(20), int64(aligned-10))
	c.count("crossing pwrite after the close", n, err, 20)
	unix.Seek(m2, 0, unix.SEEK_END)
	n, err = unix.Write(m2, x(5))
	c.count("write at the end after the close", n, err, 5)
	c.errno("truncate after the close", unix.Truncate(self(m2), 0), 0)
	return c.exit()
}

// freezeOffHelper preserves a memfd and grows it, which -freeze=false
// lets through; the live update then fails as the fake finds the size
// changed (a FrozenSizeError: EPERM from reboot).
func freezeOffHelper(args []string) int {
	var c checker
	d, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer d.Close()
	s, err := d.CreateSession("freeze")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	m, err := memfdOf(100)
	if err != nil || s.PreserveFD(m, 1) != nil {
		fmt.Fprintln(os.Stderr, "preserve:", err)
		return 2
	}
	n, err := unix.Pwrite(m, []byte("grow"), 100)
	c.count("extending pwrite without -freeze", n, err, 4)
	c.errno("ftruncate without -freeze", unix.Ftruncate(m, 4096), 0)
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
	c.errno("reboot(KEXEC) after the size changed", err, unix.EPERM)
	return c.exit()
}

func TestFreeze(t *testing.T) {
	out, err := luoemu(nil, helperCommand(t, "freeze")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "freeze helper: ok") {
		t.Fatalf("freeze helper under luoemu: %v\n%s", err, out)
	}
}

func TestFreezeOff(t *testing.T) {
	image := filepath.Join(t.TempDir(), "image")
	out, err := luoemu([]string{"-freeze=false", "-image", image}, helperCommand(t, "freeze-off")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "freeze helper: ok") {
		t.Fatalf("freeze-off helper under luoemu -freeze=false: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "preserved at 100 bytes") && !strings.Contains(string(out), "size") {
		t.Logf("luoemu's output:\n%s", out)
	}
}
