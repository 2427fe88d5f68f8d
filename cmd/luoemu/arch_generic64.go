//go:build linux && (arm64 || riscv64 || loong64)

package main

import "golang.org/x/sys/unix"

// x32Bit is zero: only x86_64 has a second syscall table in one arch.
const x32Bit = 0

// sysOpen is -1: these architectures have openat(2) only.
const sysOpen = -1

// sysTruncate is truncate(2).
const sysTruncate = unix.SYS_TRUNCATE
