//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data, which a seccomp filter reads: nr, arch,
// instruction_pointer, args[6]. Only the low 32 bits of an argument are
// read, at the start of its 8 bytes on these little-endian architectures.
const (
	dataNr   = 0
	dataArch = 4
	dataArg0 = 16
)

func dataArgLow(i int) uint32 { return uint32(dataArg0 + 8*i) }

// LUO's request words all have type 0xBA in bits 8-15 (_IOC_TYPESHIFT is
// 8 everywhere).
const (
	iocTypeMask = 0xff00
	luoIocType  = 0xBA00
)

// rebootCmdKexec is LINUX_REBOOT_CMD_KEXEC, reboot(2)'s third argument.
const rebootCmdKexec = 0x45584543

// filterConfig says which system calls the filter sends to luoemu.
type filterConfig struct {
	// freeze adds the calls that change a file's size (ftruncate,
	// fallocate, truncate) and those that write to a file (write,
	// pwrite64, writev, pwritev, pwritev2, copy_file_range, sendfile,
	// splice), for a preserved memfd's frozen size (serveSize). A filter
	// cannot tell a memfd from any other file, so every write of the
	// tree is notified; luoemu lets each go on at once while no memfd is
	// frozen. Opens are notified anyway, and an O_TRUNC open of a frozen
	// memfd is refused there (serveOpenTrunc). Not seen: writes through
	// a mapping (within the size the kernel allows them; past it both
	// kernels raise SIGBUS), io_uring, AIO, vmsplice into a pipe that is
	// then spliced (the splice is seen), and calls of other
	// architectures' system call tables (i386, x32).
	freeze bool
}

// notified lists the system calls the filter sends to luoemu whatever
// their arguments.
func (c filterConfig) notified() []int {
	nrs := []int{unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD}
	if sysOpen >= 0 {
		nrs = append(nrs, sysOpen)
	}
	if c.freeze {
		nrs = append(nrs, sizeCalls...)
	}
	return nrs
}

// sizeCalls change a file's size, or may: the kernel refuses them on a
// frozen memfd (mm/shmem.c: shmem_setattr, shmem_fallocate,
// shmem_write_begin).
var sizeCalls = []int{
	unix.SYS_FTRUNCATE, unix.SYS_FALLOCATE, sysTruncate,
	unix.SYS_WRITE, unix.SYS_PWRITE64, unix.SYS_WRITEV, unix.SYS_PWRITEV, unix.SYS_PWRITEV2,
	unix.SYS_COPY_FILE_RANGE, unix.SYS_SENDFILE, unix.SYS_SPLICE,
}

// program assembles the classic BPF seccomp filter. Every system call
// it does not send to luoemu is allowed by a path that reads only the
// arch and the number, so the kernel's per-syscall action cache (Linux
// 5.11 and later) allows those without running the filter at all: a
// program pays for luoemu only on the calls it serves.
//
// ioctl goes to luoemu only when its request has type 0xBA, and reboot
// only for LINUX_REBOOT_CMD_KEXEC; other architectures' system calls (an
// i386 program on x86_64) and x86_64's x32 calls run unserved.
func (c filterConfig) program() []unix.SockFilter {
	var a asm
	a.ld(dataArch)
	a.jeq(auditArch, "", "allow")
	a.ld(dataNr)
	if x32Bit != 0 {
		a.jge(x32Bit, "allow", "")
	}
	for _, nr := range c.notified() {
		a.jeq(uint32(nr), "notify", "")
	}
	a.jeq(unix.SYS_IOCTL, "ioctl", "")
	a.jeq(unix.SYS_REBOOT, "reboot", "allow")
	a.label("ioctl")
	a.ld(dataArgLow(1))
	a.and(iocTypeMask)
	a.jeq(luoIocType, "notify", "allow")
	a.label("reboot")
	a.ld(dataArgLow(2))
	a.jeq(rebootCmdKexec, "notify", "allow")
	a.label("allow")
	a.ret(unix.SECCOMP_RET_ALLOW)
	a.label("notify")
	a.ret(unix.SECCOMP_RET_USER_NOTIF)
	return a.assemble()
}

// asm is a classic BPF assembler with forward labels; "" as a jump
// target is the next instruction.
type asm struct {
	prog   []unix.SockFilter
	jumps  []jump
	labels map[string]int
}

type jump struct {
	at     int
	jt, jf string
}

func (a *asm) ld(off uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off})
}

func (a *asm) and(k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: k})
}

func (a *asm) ret(k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k})
}

func (a *asm) jeq(k uint32, jt, jf string) { a.jmp(unix.BPF_JEQ, k, jt, jf) }
func (a *asm) jge(k uint32, jt, jf string) { a.jmp(unix.BPF_JGE, k, jt, jf) }

func (a *asm) jmp(op uint16, k uint32, jt, jf string) {
	a.jumps = append(a.jumps, jump{at: len(a.prog), jt: jt, jf: jf})
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k})
}

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

// assemble resolves the jumps. Every target lies ahead, within 255
// instructions: the filter is short and its labels come after their jumps.
func (a *asm) assemble() []unix.SockFilter {
	off := func(from int, l string) uint8 {
		if l == "" {
			return 0
		}
		to, ok := a.labels[l]
		if !ok || to <= from || to-from-1 > 255 {
			panic("luoemu: bad filter jump to " + l)
		}
		return uint8(to - from - 1)
	}
	for _, j := range a.jumps {
		a.prog[j.at].Jt = off(j.at, j.jt)
		a.prog[j.at].Jf = off(j.at, j.jf)
	}
	return a.prog
}
