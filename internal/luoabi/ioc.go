package luoabi

import (
	"runtime"

	"github.com/go-luo/luo/liveupdate"
)

// Every LUO ioctl is defined with _IO(0xBA, nr): no direction bits and no
// size. How "no direction" is encoded depends on the architecture:
// asm-generic (x86, arm, arm64, riscv, loongarch, s390) has _IOC_NONE = 0
// with the direction at bit 30, while powerpc, mips and sparc have
// _IOC_NONE = 1 with the direction at bit 29, so their requests carry
// 0x20000000. The kernel compares the whole request word, so a wrong
// encoding fails with ENOTTY.

// IOCEncoding describes how an architecture encodes _IO(type, nr).
type IOCEncoding struct {
	None     uint32 // _IOC_NONE
	DirShift uint32 // _IOC_DIRSHIFT
}

// Encodings of _IOC_NONE in the kernel's asm/ioctl.h headers.
var (
	IOCGeneric = IOCEncoding{None: 0, DirShift: 30} // asm-generic/ioctl.h
	IOCDir29   = IOCEncoding{None: 1, DirShift: 29} // powerpc, mips, sparc
)

// ArchIOC gives the _IO encoding of every GOARCH that Go supports on Linux,
// and of sparc64 for completeness.
var ArchIOC = map[string]IOCEncoding{
	"386":      IOCGeneric,
	"amd64":    IOCGeneric,
	"arm":      IOCGeneric,
	"arm64":    IOCGeneric,
	"loong64":  IOCGeneric,
	"riscv64":  IOCGeneric,
	"s390x":    IOCGeneric,
	"mips":     IOCDir29,
	"mipsle":   IOCDir29,
	"mips64":   IOCDir29,
	"mips64le": IOCDir29,
	"ppc64":    IOCDir29,
	"ppc64le":  IOCDir29,
	"sparc64":  IOCDir29,
}

// NativeIOC is the _IO encoding of the architecture this program was built
// for (asm-generic's where ArchIOC has no entry, as for wasm), the one
// liveupdate.Command.Request uses.
var NativeIOC = nativeIOC()

func nativeIOC() IOCEncoding {
	if e, ok := ArchIOC[runtime.GOARCH]; ok {
		return e
	}
	return IOCGeneric
}

// IO returns _IO(typ, nr) in this encoding.
func (e IOCEncoding) IO(typ, nr uint8) uint32 {
	return e.None<<e.DirShift | uint32(typ)<<8 | uint32(nr)
}

// Request returns the request number of c for an architecture with
// encoding e.
func (e IOCEncoding) Request(c liveupdate.Command) uint32 {
	return e.IO(liveupdate.IoctlType, uint8(c))
}
