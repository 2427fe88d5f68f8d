package liveupdate

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"syscall"
)

// This file is the raw layer: the uapi of include/uapi/linux/liveupdate.h,
// mirrored field for field. The typed API (Device, Session) is built on it,
// and the fake kernel in package fake decodes raw requests with the same
// structs.

// IoctlType is the ioctl "magic" byte of every LUO request
// (LIVEUPDATE_IOCTL_TYPE).
const IoctlType = 0xBA

// SessionNameLen is the size of a session name field including its
// terminating NUL (LIVEUPDATE_SESSION_NAME_LENGTH). A name holds at most
// SessionNameLen-1 = 63 bytes.
const SessionNameLen = 64

// MaxNameLen is the longest session name the kernel accepts, in bytes.
const MaxNameLen = SessionNameLen - 1

// Command is the number (_IOC_NR) of a LUO ioctl. Device commands are issued
// on /dev/liveupdate, session commands on a session file descriptor.
type Command uint8

// The LUO ioctl numbers (LIVEUPDATE_CMD_*).
const (
	CmdCreateSession   Command = 0x00 // LIVEUPDATE_CMD_CREATE_SESSION, device
	CmdRetrieveSession Command = 0x01 // LIVEUPDATE_CMD_RETRIEVE_SESSION, device
	CmdPreserveFD      Command = 0x40 // LIVEUPDATE_CMD_SESSION_PRESERVE_FD, outgoing session
	CmdRetrieveFD      Command = 0x41 // LIVEUPDATE_CMD_SESSION_RETRIEVE_FD, incoming session
	CmdFinish          Command = 0x42 // LIVEUPDATE_CMD_SESSION_FINISH, incoming session
	CmdGetName         Command = 0x43 // LIVEUPDATE_CMD_SESSION_GET_NAME, any session (newer kernels)
)

// Sizes of the argument structs (sizeof in the kernel). They are the same on
// every architecture: no field needs padding.
const (
	SizeofCreateSession   = 72 // struct liveupdate_ioctl_create_session
	SizeofRetrieveSession = 72 // struct liveupdate_ioctl_retrieve_session
	SizeofPreserveFD      = 16 // struct liveupdate_session_preserve_fd
	SizeofRetrieveFD      = 16 // struct liveupdate_session_retrieve_fd
	SizeofFinish          = 8  // struct liveupdate_session_finish
	SizeofGetName         = 72 // struct liveupdate_session_get_name
)

// String returns the kernel's name of the command, such as
// "LIVEUPDATE_SESSION_PRESERVE_FD".
func (c Command) String() string {
	switch c {
	case CmdCreateSession:
		return "LIVEUPDATE_IOCTL_CREATE_SESSION"
	case CmdRetrieveSession:
		return "LIVEUPDATE_IOCTL_RETRIEVE_SESSION"
	case CmdPreserveFD:
		return "LIVEUPDATE_SESSION_PRESERVE_FD"
	case CmdRetrieveFD:
		return "LIVEUPDATE_SESSION_RETRIEVE_FD"
	case CmdFinish:
		return "LIVEUPDATE_SESSION_FINISH"
	case CmdGetName:
		return "LIVEUPDATE_SESSION_GET_NAME"
	}
	return "LIVEUPDATE_CMD(" + "0x" + strconv.FormatUint(uint64(c), 16) + ")"
}

// Device reports whether c is issued on /dev/liveupdate rather than on a
// session.
func (c Command) Device() bool { return c < 0x40 }

// Size returns sizeof the command's argument struct in the kernel, the value
// the size field carries in a well-formed request; 0 for an unknown command.
func (c Command) Size() uint32 {
	switch c {
	case CmdCreateSession, CmdRetrieveSession, CmdGetName:
		return 72
	case CmdPreserveFD, CmdRetrieveFD:
		return 16
	case CmdFinish:
		return 8
	}
	return 0
}

// Direction says which sessions a session command applies to.
type Direction uint8

// Session directions. An outgoing session was created in this boot and will
// be handed to the next kernel; an incoming one came from the previous kernel
// and was retrieved in this one.
const (
	Outgoing Direction = 1 << iota
	Incoming
	AnyDirection = Outgoing | Incoming
)

// String returns "outgoing", "incoming" or "any".
func (d Direction) String() string {
	switch d {
	case Outgoing:
		return "outgoing"
	case Incoming:
		return "incoming"
	case AnyDirection:
		return "any"
	}
	return "Direction(" + "0x" + strconv.FormatUint(uint64(d), 16) + ")"
}

// CreateSessionArgs is struct liveupdate_ioctl_create_session: the name goes
// in, the new session's fd comes out.
type CreateSessionArgs struct {
	Size uint32               // in: SizeofCreateSession
	FD   int32                // out: the session fd, close-on-exec
	Name [SessionNameLen]byte // in: NUL-terminated name, 1..63 bytes
}

// RetrieveSessionArgs is struct liveupdate_ioctl_retrieve_session; it has
// the layout of CreateSessionArgs.
type RetrieveSessionArgs CreateSessionArgs

// PreserveFDArgs is struct liveupdate_session_preserve_fd.
type PreserveFDArgs struct {
	Size  uint32 // in: SizeofPreserveFD
	FD    int32  // in: the file to preserve
	Token uint64 // in: the caller's key for the file, unique in the session
}

// RetrieveFDArgs is struct liveupdate_session_retrieve_fd.
type RetrieveFDArgs struct {
	Size  uint32 // in: SizeofRetrieveFD
	FD    int32  // out: a new close-on-exec fd for the file
	Token uint64 // in: the token the file was preserved under
}

// FinishArgs is struct liveupdate_session_finish.
type FinishArgs struct {
	Size     uint32 // in: SizeofFinish
	Reserved uint32 // in: must be zero (EINVAL since Linux 7.2; Linux 6.19 did not check it)
}

// GetNameArgs is struct liveupdate_session_get_name.
type GetNameArgs struct {
	Size     uint32               // in: SizeofGetName
	Reserved uint32               // in: must be zero (EINVAL)
	Name     [SessionNameLen]byte // out: the session's NUL-terminated name
}

// Byte order of the argument structs: the kernel's, which is the machine's.
var native = binary.NativeEndian

// Encode writes a into b (at least SizeofCreateSession bytes) in the kernel's
// byte layout.
func (a *CreateSessionArgs) Encode(b []byte) {
	_ = b[SizeofCreateSession-1]
	native.PutUint32(b[0:], a.Size)
	native.PutUint32(b[4:], uint32(a.FD))
	copy(b[8:72], a.Name[:])
}

// Decode reads a from the kernel's byte layout. It fails with EFAULT, as the
// kernel would, when b is shorter than the struct.
func (a *CreateSessionArgs) Decode(b []byte) error {
	if len(b) < SizeofCreateSession {
		return syscall.EFAULT
	}
	a.Size = native.Uint32(b[0:])
	a.FD = int32(native.Uint32(b[4:]))
	copy(a.Name[:], b[8:72])
	return nil
}

// Encode writes a into b (at least SizeofRetrieveSession bytes).
func (a *RetrieveSessionArgs) Encode(b []byte) { (*CreateSessionArgs)(a).Encode(b) }

// Decode reads a from b; EFAULT when b is short.
func (a *RetrieveSessionArgs) Decode(b []byte) error { return (*CreateSessionArgs)(a).Decode(b) }

// Encode writes a into b (at least SizeofPreserveFD bytes).
func (a *PreserveFDArgs) Encode(b []byte) {
	_ = b[SizeofPreserveFD-1]
	native.PutUint32(b[0:], a.Size)
	native.PutUint32(b[4:], uint32(a.FD))
	native.PutUint64(b[8:], a.Token)
}

// Decode reads a from b; EFAULT when b is short.
func (a *PreserveFDArgs) Decode(b []byte) error {
	if len(b) < SizeofPreserveFD {
		return syscall.EFAULT
	}
	a.Size = native.Uint32(b[0:])
	a.FD = int32(native.Uint32(b[4:]))
	a.Token = native.Uint64(b[8:])
	return nil
}

// Encode writes a into b (at least SizeofRetrieveFD bytes).
func (a *RetrieveFDArgs) Encode(b []byte) { (*PreserveFDArgs)(a).Encode(b) }

// Decode reads a from b; EFAULT when b is short.
func (a *RetrieveFDArgs) Decode(b []byte) error { return (*PreserveFDArgs)(a).Decode(b) }

// Encode writes a into b (at least SizeofFinish bytes).
func (a *FinishArgs) Encode(b []byte) {
	_ = b[SizeofFinish-1]
	native.PutUint32(b[0:], a.Size)
	native.PutUint32(b[4:], a.Reserved)
}

// Decode reads a from b; EFAULT when b is short.
func (a *FinishArgs) Decode(b []byte) error {
	if len(b) < SizeofFinish {
		return syscall.EFAULT
	}
	a.Size = native.Uint32(b[0:])
	a.Reserved = native.Uint32(b[4:])
	return nil
}

// Encode writes a into b (at least SizeofGetName bytes).
func (a *GetNameArgs) Encode(b []byte) {
	_ = b[SizeofGetName-1]
	native.PutUint32(b[0:], a.Size)
	native.PutUint32(b[4:], a.Reserved)
	copy(b[8:72], a.Name[:])
}

// Decode reads a from b; EFAULT when b is short.
func (a *GetNameArgs) Decode(b []byte) error {
	if len(b) < SizeofGetName {
		return syscall.EFAULT
	}
	a.Size = native.Uint32(b[0:])
	a.Reserved = native.Uint32(b[4:])
	copy(a.Name[:], b[8:72])
	return nil
}

// NameFromBytes reads a session name field as the kernel does (strnlen over
// SessionNameLen bytes) and reports whether it is one the kernel accepts on
// create: 1..63 bytes followed by a NUL. It returns EINVAL otherwise, with
// the bytes read so far as the name.
func NameFromBytes(b *[SessionNameLen]byte) (string, error) {
	n := bytes.IndexByte(b[:], 0)
	if n < 0 {
		return string(b[:]), syscall.EINVAL
	}
	if n == 0 {
		return "", syscall.EINVAL
	}
	return string(b[:n]), nil
}

// PutName stores name NUL-terminated in b, zeroing the rest. It checks name
// with ValidateName first and leaves b alone if that fails.
func PutName(b *[SessionNameLen]byte, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	n := copy(b[:], name)
	clear(b[n:])
	return nil
}
