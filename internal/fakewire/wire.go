//go:build linux

package fakewire

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Address prefixes. The abstract address of a fake object's user end is
// AddrPrefix, a 16-digit hex id unique to the object, a space, then
// SessionTag+name for a session or DeviceTag for a device.
const (
	AddrPrefix = "luo-fake "
	SessionTag = "[luo_session] "
	DeviceTag  = "[luo_device]"
)

// Magic starts every request ("LUOF").
const Magic = 0x464f554c

// Header sizes.
const (
	RequestHeaderLen = 16 // magic, request word, flags, argument length
	ReplyHeaderLen   = 8  // errno, flags
)

// MaxReply is the most bytes a reply copies back into an argument: the
// kernel copies min(size, sizeof its struct), and its largest struct is 72
// bytes.
const MaxReply = 128

// MaxArg is the largest argument a request carries. Larger raw requests
// fail with E2BIG before they are sent.
const MaxArg = 64 << 10

// Request flags.
const (
	FlagArgFD uint32 = 1 << iota // the file named by the argument's fd field is attached after the reply socket
	FlagBadFD                    // the argument's fd field named no open file
)

// Reply flags.
const (
	ReplyNewFD uint32 = 1 << iota // a new fd is attached; its number goes in the argument at offset 4
	ReplyStale                    // the object belongs to a fake kernel replaced by a live update
	ReplyDone                     // follows a ReplyNewFD reply once the fake has closed its copy of the new fd
	ReplyLent                     // with ReplyNewFD: the new fd is one the fake keeps open, and no ReplyDone follows
)

var native = binary.NativeEndian

// EncodeRequest writes a request header for req with flags and an argument
// of argLen bytes into h.
func EncodeRequest(h *[RequestHeaderLen]byte, req, flags uint32, argLen int) {
	native.PutUint32(h[0:], Magic)
	native.PutUint32(h[4:], req)
	native.PutUint32(h[8:], flags)
	native.PutUint32(h[12:], uint32(argLen))
}

// ErrMalformed reports a message that does not follow this format.
var ErrMalformed = errors.New("fakewire: malformed message")

// DecodeRequest splits a request message into its request word, flags and
// argument bytes.
func DecodeRequest(msg []byte) (req, flags uint32, arg []byte, err error) {
	if len(msg) < RequestHeaderLen || native.Uint32(msg) != Magic {
		return 0, 0, nil, ErrMalformed
	}
	n := native.Uint32(msg[12:])
	if uint64(n) != uint64(len(msg)-RequestHeaderLen) {
		return 0, 0, nil, ErrMalformed
	}
	return native.Uint32(msg[4:]), native.Uint32(msg[8:]), msg[RequestHeaderLen:], nil
}

// EncodeReply writes a reply header into h.
func EncodeReply(h *[ReplyHeaderLen]byte, errno unix.Errno, flags uint32) {
	native.PutUint32(h[0:], uint32(errno))
	native.PutUint32(h[4:], flags)
}

// DecodeReply splits a reply into its errno, flags and the bytes to copy
// back into the caller's argument.
func DecodeReply(msg []byte) (errno unix.Errno, flags uint32, payload []byte, err error) {
	if len(msg) < ReplyHeaderLen {
		return 0, 0, nil, ErrMalformed
	}
	return unix.Errno(native.Uint32(msg)), native.Uint32(msg[4:]), msg[ReplyHeaderLen:], nil
}

// Addr is what the abstract address of a fake object's user end says.
type Addr struct {
	ID      uint64
	Session bool   // a session, not a device
	Name    string // the session's name
}

// String returns the abstract socket name (without the leading NUL).
func (a Addr) String() string {
	id := strconv.FormatUint(a.ID, 16)
	s := AddrPrefix + strings.Repeat("0", 16-len(id)) + id + " "
	if a.Session {
		return s + SessionTag + a.Name
	}
	return s + DeviceTag
}

// ParseAddr reads an abstract socket name (without the leading NUL or
// "@"). ok is false when it is not a fake object's address.
func ParseAddr(s string) (a Addr, ok bool) {
	rest, ok := strings.CutPrefix(s, AddrPrefix)
	if !ok || len(rest) < 17 || rest[16] != ' ' {
		return Addr{}, false
	}
	id, err := strconv.ParseUint(rest[:16], 16, 64)
	if err != nil {
		return Addr{}, false
	}
	rest = rest[17:]
	if name, ok := strings.CutPrefix(rest, SessionTag); ok {
		return Addr{ID: id, Session: true, Name: name}, true
	}
	if rest == DeviceTag {
		return Addr{ID: id}, true
	}
	return Addr{}, false
}

// Peer returns the fake object address bound to fd, the user's end of a
// fake device or session; ok is false for any other fd.
func Peer(fd int) (a Addr, ok bool) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return Addr{}, false
	}
	u, isUnix := sa.(*unix.SockaddrUnix)
	if !isUnix || !strings.HasPrefix(u.Name, "@") {
		return Addr{}, false
	}
	return ParseAddr(u.Name[1:])
}
