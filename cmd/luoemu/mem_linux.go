//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// pageSize bounds each remote read, so that a read that runs into an
// unmapped page still returns what lies before it.
var pageSize = uint64(unix.Getpagesize())

// readMem reads len(buf) bytes at addr of task pid into buf and returns
// how many were readable: fewer when the range runs into memory the task
// cannot read, as a kernel copy_from_user would fault there.
func readMem(pid int, addr uint64, buf []byte) int {
	done := 0
	for done < len(buf) {
		a := addr + uint64(done)
		if a < addr { // wrapped
			break
		}
		n := min(uint64(len(buf)-done), pageSize-a%pageSize)
		local := []unix.Iovec{{Base: &buf[done], Len: n}}
		remote := []unix.RemoteIovec{{Base: uintptr(a), Len: int(n)}}
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if got > 0 {
			done += got
		}
		if err != nil || got < int(n) {
			break
		}
	}
	return done
}

// writeMem writes buf at addr of task pid. It fails with EFAULT when the
// task cannot be written there, as copy_to_user would.
func writeMem(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil || n != len(buf) {
		return unix.EFAULT
	}
	return nil
}

// readString reads a NUL-terminated string of at most max bytes at addr,
// as strncpy_from_user does: EFAULT when it runs into unreadable memory
// first, ENAMETOOLONG when no NUL comes within max bytes.
func readString(pid int, addr uint64, max int) (string, error) {
	var out []byte
	var page [4096]byte
	for len(out) < max {
		a := addr + uint64(len(out))
		n := min(uint64(len(page)), pageSize-a%pageSize, uint64(max-len(out)))
		got := readMem(pid, a, page[:n])
		if i := bytes.IndexByte(page[:got], 0); i >= 0 {
			return string(append(out, page[:i]...)), nil
		}
		if got < int(n) {
			return "", unix.EFAULT
		}
		out = append(out, page[:got]...)
	}
	return "", unix.ENAMETOOLONG
}
