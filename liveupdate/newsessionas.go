package liveupdate

import "errors"

// NewSessionAs is NewSession for a session fd whose direction the caller
// knows, because the process that sent it said so (see package
// liveupdate/fdpass): the Session's Direction then reports dir. The kernel
// does not tell an fd's direction, so dir is taken as given; it must be
// Outgoing, Incoming or 0 (not known), else NewSessionAs fails without
// touching fd.
func NewSessionAs(fd int, dir Direction) (*Session, error) {
	if dir != 0 && dir != Outgoing && dir != Incoming {
		return nil, &Error{Op: OpWrapSession, Err: errors.New("direction " + dir.String() + " is neither Outgoing nor Incoming")}
	}
	s, err := NewSession(fd)
	if err != nil {
		return nil, err
	}
	s.dir = dir
	return s, nil
}
