//go:build linux

package main

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH of the syscalls luoemu serves: x86_64's.
// i386 syscalls (int 0x80) and x32 ones (nr with x32Bit) run unserved.
const auditArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks an x32 syscall number on x86_64.
const x32Bit = 0x40000000

// sysOpen is open(2), which x86_64 has beside openat(2).
const sysOpen = unix.SYS_OPEN

// sysTruncate is truncate(2).
const sysTruncate = unix.SYS_TRUNCATE
