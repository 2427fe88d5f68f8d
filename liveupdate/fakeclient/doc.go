// Package fakeclient lets package liveupdate reach fake kernels (package
// liveupdate/fake): importing it, for its side effect only, installs the
// client that speaks to a fake kernel's fds and device sockets.
//
// Package liveupdate on its own treats every fd as the kernel's: a binary
// that imports neither this package nor package fake carries none of the
// fake's wire client, and Open, NewDevice, NewSession and IsSession cost no
// getsockname or dial. Package fake imports this package, so every test
// that starts a fake kernel has it. Import it yourself only in a binary
// that links no fake kernel but is run against one in another process,
// such as an agent a test rig starts with the path of a fake's device
// socket (fake.Kernel.Listen):
//
//	import _ "github.com/go-luo/luo/liveupdate/fakeclient"
//
// On systems other than Linux importing it does nothing.
package fakeclient
