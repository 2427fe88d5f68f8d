package luoabi

import (
	"encoding/binary"
	"syscall"
)

// ReadSize returns the size field at the start of a raw request, as the
// kernel's get_user does: EFAULT when fewer than 4 bytes are readable.
func ReadSize(user []byte) (uint32, error) {
	if len(user) < 4 {
		return 0, syscall.EFAULT
	}
	return binary.NativeEndian.Uint32(user), nil
}

// CheckSize applies the kernel's "size < min_size" check: EINVAL when the
// size field is below minSize.
func CheckSize(size, minSize uint32) error {
	if size < minSize {
		return syscall.EINVAL
	}
	return nil
}

// CopyStructFromUser mirrors the kernel's copy_struct_from_user: it copies a
// request of usize bytes from user into dst, the kernel's struct of
// len(dst) bytes. A shorter request is zero-extended; bytes of a longer one
// beyond len(dst) must be zero, or it fails with E2BIG. It fails with EFAULT
// when user holds fewer than usize bytes, as a kernel read would, except
// when a non-zero byte beyond len(dst) comes before the end of user: the
// kernel's check_zeroed_user scans the tail first and stops there, E2BIG.
func CopyStructFromUser(dst, user []byte, usize uint32) error {
	if uint64(usize) > uint64(len(dst)) && len(user) > len(dst) {
		tail := user[len(dst):min(uint64(len(user)), uint64(usize))]
		for _, c := range tail {
			if c != 0 {
				return syscall.E2BIG
			}
		}
	}
	if uint64(len(user)) < uint64(usize) {
		return syscall.EFAULT
	}
	n := copy(dst, user[:usize])
	clear(dst[n:])
	return nil
}

// ReplyLen is how many bytes the kernel copies back into a request of size
// usize when its struct is ksize bytes: min(usize, ksize).
func ReplyLen(usize, ksize uint32) uint32 { return min(usize, ksize) }
