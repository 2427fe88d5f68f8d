// Package fake is a Linux Live Update Orchestrator in Go: a fake kernel
// that a live-update agent's tests use instead of /dev/liveupdate and a
// kexec.
//
// A Kernel models the kernel's LUO session state machine: its checks and
// errnos in the kernel's order, its lock hierarchy, its limits, as a kernel
// release has them: Linux 7.2 (DefaultGeneration, checked against Linux
// 7.2.13 running in a VM) or Linux 6.19, the first merged LUO
// (WithGeneration). Kernel.Open returns the *liveupdate.Device that agent
// code already uses, so the agent runs unchanged:
//
//	k, err := fake.New()
//	...
//	defer k.Close()
//	dev, err := k.Open()  // instead of liveupdate.Open(liveupdate.DefaultPath)
//	// the agent's first stage: create sessions, preserve memfds
//	err = k.Kexec()       // instead of reboot(LINUX_REBOOT_CMD_KEXEC)
//	dev, err = k.Open()   // the next kernel: the agent's second stage
//
// # Fds
//
// Device and session fds of a fake are real fds: the user's ends of unix
// socket pairs whose other ends the fake serves. They are close-on-exec,
// can be dup'd, inherited or passed to another process over a unix socket,
// and still work there; liveupdate.NewSession and liveupdate.IsSession
// recognise them in every binary that links this package or
// liveupdate/fakeclient (a binary with neither treats every fd as the
// kernel's). When the last copy of a session fd closes, by
// Session.Close, a raw close(2) or a process exiting, the fake releases the
// session as the kernel does, and the next request already sees it. (The
// fake's own end of a released fd closes a moment later, from the
// goroutine that served it; Close waits for all of them, so count a test's
// fds after it.)
// Kernel.Listen serves the device on a unix socket, which
// liveupdate.Open(path) opens from any process that links this package or
// liveupdate/fakeclient.
//
// Only ioctls mean anything on a LUO fd. The kernel's files have no read
// or write operation, so read(2) and write(2) fail with EINVAL and change
// nothing (fs/read_write.c: vfs_read, vfs_write). On a fake's fd a write
// succeeds, as on any socket, and the fake drops what it wrote, a message
// of no bytes included: it changes nothing, and only the last close
// releases. A read returns no bytes at once.
//
// Whatever a client sends, the fake's resources stay bounded and nothing
// it does waits for a client: it serves at most MaxInFlight requests per
// fd at a time (the next waits in the fd's socket), a reply the client's
// reply socket cannot take at once is lost, and Close returns.
//
// # The live update
//
// Kexec freezes every outgoing session's files and writes them, in the
// kernel's byte layout (luo-v5 with memfd-v2 for Linux 7.2, memfd-v1 for
// Linux 6.19; package kho), into simulated preserved memory; the next
// kernel starts from those bytes alone. Memfds keep their contents (holes
// read back as zeros), size and position, and in Linux 7.2 their seals; a
// retrieved memfd is O_RDWR|O_LARGEFILE. Other kinds of files can be
// preserved by registering a Handler (WithHandler), whose state travels in
// the image as the kernel's handlers' does.
//
// Linux 7.2 has a bug that the fake has too: CREATE_SESSION grows the
// kernel's block set of outgoing sessions (51 per block) before it finds
// a duplicate name, and does not shrink it on EEXIST. With 51·k sessions
// a duplicate create leaves an empty block, and the next kernel panics at
// boot on it; a later successful create or any close repairs it.
// Kexec then returns a *PanicError, and the machine does not come up:
// Open and Kexec fail with that error until Reboot, the cold boot after
// which nothing is handed over. State.SessionBlocks shows the broken state
// before a Kexec.
//
// The two stages of an agent can also run as two processes, as the
// kernel's own kexec selftests do. Give both the same image file:
//
//	k, err := fake.New(fake.WithImageFile("/tmp/luo.img")) // or fake.FromEnv() and LUO_FAKE_IMAGE
//
// In the first process there is no file yet (or an empty one): the kernel
// boots fresh, and Kexec writes the image to the file. In the second, New
// finds the file and boots from it. An image the real kernel would panic on at boot (another
// ABI version, a corrupt session chain) makes New fail with a PanicError;
// one whose files cannot be restored (a memfd-v1 file for Linux 7.2, a
// corrupt file chain) makes every Open fail with EIO.
//
// # Faults and fidelity
//
// FailPreserve, FailFreeze, FailRetrieve and FailRestore make the matching
// step fail with a chosen errno, to exercise an agent's error paths. A
// fault that names a session or file nothing will match is an error (an
// *UnmatchedFaultError from the Fail method or the Kexec), and
// CheckFaults tells a test whether every armed fault fired. State and
// CheckInvariants let a test look at the kernel's sessions. Package
// faketest starts a kernel for a test and runs those checks at its end.
//
// The kernel freezes a preserved memfd's size (EPERM on ftruncate, on a
// write past the end, on any fallocate). A process cannot do that
// reversibly, so the fake lets the change happen and fails the Kexec with a
// FrozenSizeError that names the file instead. Same-size changes that
// release pages (a punched hole, ftruncate(0) then a rewrite to the same
// size) fail it with a FrozenPagesError: like the kernel, the fake
// allocates a preserved memfd's pages at preserve, and it keeps them
// mapped and locked to see them go. A hole punched within one page and an
// fallocate that changes nothing go unnoticed, and for memfds over 64 MiB,
// or where mlock fails, only released pages that lower the block count are
// caught. Kernel.Frozen tells which files the kernel would have frozen, for
// a program that can refuse the calls itself: cmd/luoemu, which serves a
// program tree's system calls, answers them with the kernel's EPERM.
//
// Other known differences: requests on the old kernel's fds after a Kexec
// fail with ESTALE (the kernel blocks them, and is gone); a retrieved
// memfd is named "memfd:" (the kernel's has an empty name); images of
// both generations are in the luo-v5 layout (Linux 6.19 wrote an FDT,
// compatible "luo-v1", on which Linux 7.2 panics).
//
// The package needs Linux. Elsewhere it declares every name it has on
// Linux, so that tests using it compile everywhere; New and every Kernel
// method return liveupdate.ErrNotSupported there.
package fake
