//go:build !(ppc64 || ppc64le || mips || mipsle || mips64 || mips64le || sparc64)

package liveupdate

// _IOC_NONE and _IOC_DIRSHIFT of asm-generic/ioctl.h, which this
// architecture uses.
const (
	iocNone     = 0
	iocDirShift = 30
)
