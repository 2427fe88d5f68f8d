// Package fdpass sends LUO session fds between processes over unix sockets,
// with the session's name and direction, as a daemon that owns
// /dev/liveupdate hands sessions to its clients (the kernel's own luod
// works so).
//
// Send writes one message and the session fd (SCM_RIGHTS) on a
// *net.UnixConn; Receive reads it back as a *liveupdate.Session whose
// Direction is the one the sender's Session had. The kernel does not show
// a session fd's direction, so the message carries it.
//
// A message is MessageLen bytes, so that on a stream socket Receive reads
// exactly one and leaves what follows for the caller:
//
//	offset 0   4 bytes  "LUOS"
//	offset 4   1 byte   version, 1
//	offset 5   1 byte   direction: 0 not known, 1 outgoing, 2 incoming
//	offset 6   1 byte   name length n, 0..63
//	offset 7   1 byte   0
//	offset 8  64 bytes  the name, then zeros
//
// The fd travels with the message's first byte. Receive checks the message,
// that exactly one fd came with it, that the fd is a LUO session (of the
// kernel or of a fake kernel) and that the session's name is the one the
// message names; on any error it closes every fd it received. A received
// fd is close-on-exec.
//
// The package works on Linux; elsewhere Send and Receive fail with an
// error matching errors.ErrUnsupported.
package fdpass
