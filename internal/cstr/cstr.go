// Package cstr reads C strings: the bytes of a fixed-size field, or of
// any buffer, up to the first NUL, as the kernel's strnlen and strncmp
// see them. The kho codec, the fake kernel and the kexec selftests share
// it.
package cstr

import "bytes"

// String returns b up to its first NUL byte, or all of b when it holds
// none.
func String(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
