//go:build linux

package main

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH of the syscalls luoemu serves.
const auditArch = unix.AUDIT_ARCH_AARCH64
