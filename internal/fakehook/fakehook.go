// Package fakehook is the seam between package liveupdate and a fake
// kernel's wire client. Package liveupdate asks it for the client installed,
// if any, before treating a socket as a fake kernel's fd; package
// liveupdate/fakeclient (which package liveupdate/fake imports) installs
// the client from its init function. A binary that links neither carries
// no client, and package liveupdate then treats every fd as the kernel's:
// it never calls getsockname or dials a socket.
//
// The pattern is that of cilium/ebpf's internal testutils hooks: the
// production package holds a nil hook that only a test-side package sets.
package fakehook

import "sync/atomic"

// Client carries requests to fake kernels (see package
// github.com/go-luo/luo/internal/fakewire for the wire format).
type Client interface {
	// Call sends the request word req with argument arg on fd, the
	// user's end of a fake device or session, and copies the reply into
	// arg as the kernel's ioctl would. When attachArgFD is set the file
	// named by the fd field at arg[4:8] travels with the request.
	Call(fd int, req uint32, arg []byte, attachArgFD bool) error
	// Dial connects to the device socket a fake kernel listens on at
	// path and returns the user's end of a fake device.
	Dial(path string) (int, error)
	// Peer reports whether fd, a socket, is the user's end of a fake
	// object (ok), whether that object is a session, and its name.
	Peer(fd int) (session bool, name string, ok bool)
}

var installed atomic.Pointer[Client]

// Install makes c the client package liveupdate uses for fake kernels'
// fds; nil removes it. Package fakeclient calls it from its init.
func Install(c Client) {
	if c == nil {
		installed.Store(nil)
		return
	}
	installed.Store(&c)
}

// Installed returns the client installed, or nil when no fake kernel
// client is linked into this binary.
func Installed() Client {
	if p := installed.Load(); p != nil {
		return *p
	}
	return nil
}
