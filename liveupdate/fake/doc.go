// Package fake is a Linux Live Update Orchestrator in Go: a fake kernel
// that a live-update agent's tests use instead of /dev/liveupdate and a
// kexec.
//
// A Kernel models the kernel's LUO session state machine, with its checks
// and errnos in the kernel's order, its lock hierarchy and its limits, for
// the newest kernel or the first merged one (WithGeneration). Kernel.Open
// returns the *liveupdate.Device that agent code already uses, so the agent
// runs unchanged:
//
//	k, err := fake.New()
//	...
//	defer k.Close()
//	dev, err := k.Open()
//	// hand dev to the agent's first stage, then:
//	err = k.Kexec()
//	dev, err = k.Open() // the next kernel: the agent's second stage
//
// Device and session fds of a fake are real fds: the user's ends of unix
// socket pairs whose other ends the fake serves. They are close-on-exec,
// can be dup'd, inherited or passed to another process over a unix socket,
// and still work there; liveupdate.NewSession and liveupdate.IsSession
// recognise them. When the last copy of a session fd closes, by
// Session.Close, a raw close(2) or a process exiting, the fake releases
// the session as the kernel does. The release is seen before the next
// request is answered: the fake checks for closed fds first.
//
// Memfds are preserved with their contents, size and file position. The
// fake cannot stop a preserved memfd from changing size as the kernel does;
// it reports the change at Kexec instead (FrozenSizeError).
//
// The package needs Linux; elsewhere New returns
// liveupdate.ErrNotSupported.
package fake
