//go:build ppc64 || ppc64le || mips || mipsle || mips64 || mips64le || sparc64

package liveupdate

// _IOC_NONE and _IOC_DIRSHIFT of this architecture's asm/ioctl.h (powerpc,
// mips and sparc share them).
const (
	iocNone     = 1
	iocDirShift = 29
)
