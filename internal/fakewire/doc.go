// Package fakewire is the message format between package liveupdate and the
// fake kernel of package liveupdate/fake.
//
// A fake device or session fd is one end of an AF_UNIX SOCK_SEQPACKET
// socket pair; the fake kernel holds the other end. The user's end is bound
// to an abstract address that names it ("luo-fake <id> [luo_session]
// NAME"), so getsockname tells a fake session fd and its name from any
// other socket, in any process it is passed to. A request is one message on
// the user's end carrying the ioctl's request word and argument bytes, with
// a fresh reply socket (and, for PRESERVE_FD, the file) attached as
// SCM_RIGHTS; the answer comes back on the reply socket, which the fake
// shuts down instead when it drops the request unanswered (a message that
// is not a request) or cannot send the whole answer. When every copy of
// the user's end is closed, the fake kernel reads end-of-file on its end:
// that is the fake's file release, whoever closed it and however.
package fakewire
