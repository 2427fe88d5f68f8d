package testexec

import (
	"os"

	"golang.org/x/sys/unix"
)

// UnderQEMUUser reports whether the test runs under qemu-user (go test
// -exec qemu-ARCH-static), which emulates some system calls imperfectly:
// it answers an ioctl it does not know with ENOSYS itself, where the
// kernel answers ENOTTY for /dev/null. Tests use it to skip checks of
// what only the emulator gets wrong.
func UnderQEMUUser() bool {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return false
	}
	defer f.Close()
	// _IO(0xBA, 0x43), LUO's GET_NAME on most architectures: unknown
	// to /dev/null and to qemu-user.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), 0xBA43, 0)
	return errno == unix.ENOSYS
}
