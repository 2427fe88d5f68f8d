package liveupdate

// Request numbers. Every LUO ioctl is defined with _IO(0xBA, nr): no
// direction bits and no size. How "no direction" is encoded depends on the
// architecture: asm-generic (x86, arm, arm64, riscv, loongarch, s390) has
// _IOC_NONE = 0 with the direction at bit 30, while powerpc, mips and sparc
// have _IOC_NONE = 1 with the direction at bit 29, so their requests carry
// 0x20000000. The kernel compares the whole request word, so a wrong
// encoding fails with ENOTTY.

// Request returns the request number of c on the architecture this program
// was built for: 0xBA00+nr, or 0x2000BA00+nr on powerpc, mips and sparc.
func (c Command) Request() uint32 {
	return iocNone<<iocDirShift | IoctlType<<8 | uint32(c)
}
