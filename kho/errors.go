package kho

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrBadAddress reports a physical address outside the memory's pages. It
// wraps syscall.EFAULT.
var ErrBadAddress = fmt.Errorf("kho: address not in preserved memory: %w", syscall.EFAULT)

// ErrImageTooLarge reports an image of more than MaxImagePages pages,
// which WriteTo refuses to write. It wraps syscall.EFBIG.
var ErrImageTooLarge = fmt.Errorf("kho: image too large for an image file: %w", syscall.EFBIG)

// ErrImageFormat reports a malformed image container (see ReadImage).
var ErrImageFormat = errors.New("kho: malformed image")

// DecodeError reports preserved state that breaks a rule of the ABI. PA is
// the physical address of the offending structure or byte, Rule says what
// is wrong, and Err is the errno the kernel would give (syscall.EINVAL,
// ENOSPC, ...) or ErrBadAddress.
type DecodeError struct {
	PA   uint64
	Rule string
	Err  error
}

// Error names the address in hex and the rule broken, for example
// "kho: PA 0x100002000: session block count 0 not in 1..51: invalid argument".
func (e *DecodeError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("kho: PA %#x: %s", e.PA, e.Rule)
	}
	return fmt.Sprintf("kho: PA %#x: %s: %v", e.PA, e.Rule, e.Err)
}

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(pa uint64, errno error, format string, args ...any) *DecodeError {
	return &DecodeError{PA: pa, Rule: fmt.Sprintf(format, args...), Err: errno}
}
