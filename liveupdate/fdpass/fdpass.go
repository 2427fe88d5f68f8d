package fdpass

import (
	"strconv"

	"github.com/go-luo/luo/liveupdate"
)

// MessageLen is the size of the message that carries a session fd.
const MessageLen = 8 + liveupdate.SessionNameLen

// magic starts every message; version is the format this package writes.
const (
	magic   = "LUOS"
	version = 1
)

// encode returns the message for a session called name of direction dir.
// name must be at most liveupdate.MaxNameLen bytes.
func encode(name string, dir liveupdate.Direction) []byte {
	b := make([]byte, MessageLen)
	copy(b, magic)
	b[4] = version
	b[5] = byte(dir)
	b[6] = byte(len(name))
	copy(b[8:], name)
	return b
}

// decode parses a message of MessageLen bytes.
func decode(b []byte) (name string, dir liveupdate.Direction, err error) {
	switch {
	case len(b) != MessageLen:
		return "", 0, &Error{Reason: "message of " + strconv.Itoa(len(b)) + " bytes, want " + strconv.Itoa(MessageLen)}
	case string(b[:4]) != magic:
		return "", 0, &Error{Reason: "message does not start with " + `"` + magic + `"`}
	case b[4] != version:
		return "", 0, &Error{Reason: "message version " + strconv.Itoa(int(b[4])) + ", this package reads " + strconv.Itoa(version)}
	}
	dir = liveupdate.Direction(b[5])
	if dir != 0 && dir != liveupdate.Outgoing && dir != liveupdate.Incoming {
		return "", 0, &Error{Reason: "message direction " + strconv.Itoa(int(b[5])) + ", want 0, 1 or 2"}
	}
	n := int(b[6])
	if n > liveupdate.MaxNameLen {
		return "", 0, &Error{Reason: "message name length " + strconv.Itoa(n) + ", more than " + strconv.Itoa(liveupdate.MaxNameLen)}
	}
	if b[7] != 0 {
		return "", 0, &Error{Reason: "message byte 7 is not 0"}
	}
	for _, c := range b[8+n:] {
		if c != 0 {
			return "", 0, &Error{Reason: "message has bytes after its name"}
		}
	}
	return string(b[8 : 8+n]), dir, nil
}

// Error reports a message that is not one Send writes, or one that came
// with no fd, more than one, or an fd that does not match it.
type Error struct {
	Reason string // what is wrong, in a few words
}

// Error returns "fdpass: receive session: " and the reason.
func (e *Error) Error() string { return "fdpass: receive session: " + e.Reason }
