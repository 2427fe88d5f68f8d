//go:build linux

package fakewire

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxFDs is the most fds a request or reply brings that are kept: a
// request carries its reply socket and the file to preserve, a reply the
// new fd. More are closed on receipt.
const MaxFDs = 4

// ControlLen is room for the control data of a request: the sender's
// credentials (CmsgSpace of a ucred: at most 32 bytes) and MaxFDs fds (a
// header of at most 16 bytes and 4 bytes each); the kernel closes fds
// beyond what fits.
const ControlLen = 32 + 16 + 4*MaxFDs

// Control is a buffer for control data that PutRights and ParseRights
// read and write in place: word-aligned (a byte array on the stack may sit
// at any address, and strict-alignment machines fault on an unaligned
// header).
type Control struct {
	_ [0]uint64
	b [ControlLen]byte
}

// Bytes returns the whole buffer, for a recvmsg.
func (c *Control) Bytes() []byte { return c.b[:] }

// PutRights writes an SCM_RIGHTS message of n (1 or 2) fds, a then b, into
// c and returns it, as unix.UnixRights does without allocating.
func PutRights(c *Control, a, b, n int) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c.b[0]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4 * n))
	data := c.b[unix.CmsgLen(0):]
	native.PutUint32(data, uint32(int32(a)))
	if n > 1 {
		native.PutUint32(data[4:], uint32(int32(b)))
	}
	return c.b[:unix.CmsgSpace(4*n)]
}

// ParseRights puts the fds of every SCM_RIGHTS message in oob, a prefix of
// a Control's bytes, into fds, closes those beyond MaxFDs, and returns how
// many it put; other messages (credentials) are skipped. ok is false when
// oob does not parse, which the kernel's own control data always does;
// the fds put until then are the caller's to close.
func ParseRights(oob []byte, fds *[MaxFDs]int) (n int, ok bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return n, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			for data := oob[unix.CmsgLen(0):l]; len(data) >= 4; data = data[4:] {
				fd := int(int32(native.Uint32(data)))
				if n < MaxFDs {
					fds[n] = fd
					n++
				} else {
					unix.Close(fd)
				}
			}
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return n, true
}
