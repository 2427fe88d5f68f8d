// Package liveupdate drives the Linux Live Update Orchestrator (LUO): it
// keeps chosen file descriptors, memfds first, alive across a kexec into a
// new kernel.
//
// # Flow
//
// Before the update, an agent opens the device (Open), creates an outgoing
// session (Device.CreateSession) and preserves files in it under tokens of
// its choosing (Session.Preserve). It keeps the session fd open until the
// kexec. After the update, the agent opens the device again, retrieves the
// session by name (Device.RetrieveSession), takes its files back
// (Session.Retrieve) and finishes the session (Session.Finish).
//
// # Lifetime and ownership
//
//   - The kernel lets one process at a time hold the device open (EBUSY for
//     the next). Closing the device does not touch sessions: they are fds of
//     their own.
//   - Closing an outgoing session's fd (its last copy, counting dups and
//     copies in other processes) makes the kernel drop the session and
//     unpreserve its files: the live update will not carry it. Keep the fd
//     open until the kexec, in this process or one you hand it to.
//   - Closing an incoming session's fd finishes it: files not yet retrieved
//     are destroyed.
//   - Only Session.Close closes a session fd. There is no finalizer: a
//     Session the garbage collector reclaims without Close leaves its fd
//     open, so the session survives (a leaked fd can be found and closed; a
//     lost live-update state cannot be recovered).
//   - Session fds and retrieved files are close-on-exec, as the kernel makes
//     them. Retrieved files are *os.File values the caller owns.
//
// # Errors
//
// Every error is an *Error naming the operation (an Op constant) and the
// session (and token) it acted on, wrapping the kernel's errno:
// errors.Is(err, unix.EEXIST), errors.Is(err, os.ErrNotExist) and the like
// work. Mistakes this package can see, such as an invalid session name,
// are reported before any request is made, with errors that match the
// errno the kernel would have given (ErrInvalidName matches EINVAL). A
// missing device gives ErrNotSupported.
//
// # Two layers
//
// The typed API (Device, Session) sits on a raw layer that mirrors the
// kernel's uapi: the argument structs (CreateSessionArgs, PreserveFDArgs,
// ...) and their byte encoding, the request numbers (Command.Request), and
// the session name rules (ValidateName, PutName, NameFromBytes).
// Device.RawIoctl and Session.RawIoctl send arbitrary bytes, so a test can
// put a malformed request to a kernel and compare answers.
//
// # The fake kernel
//
// Package fake is a kernel in Go that agents' tests use instead of
// /dev/liveupdate. The seam is the file descriptor: a fake's device and
// session fds are real fds (the user's ends of unix socket pairs whose other
// ends the fake holds), so the same Device and Session types work on both.
// A request on a fake fd carries the same request word and argument bytes
// the kernel would get, as a message on that socket; the fake answers with
// the kernel's errno and bytes, and any new fd as SCM_RIGHTS. Because the
// fd is the whole connection, a fake session fd can be passed to another
// process or inherited, and NewSession and IsSession recognise it there
// too; closing its last copy, however that happens, releases the session as
// the kernel would.
//
// Only a binary that links package fake, or liveupdate/fakeclient for a
// fake in another process, can reach a fake: this package holds no client
// of its own. A binary that links neither treats every fd as the kernel's;
// Open, NewDevice, NewSession and IsSession then cost no getsockname and no
// dial (an fd is put to the fake client only when it is a socket).
//
// # Architectures
//
// Request numbers and struct bytes are the kernel's on every architecture
// Go supports on Linux (powerpc, mips and sparc set bit 29 of every request
// word; structs are in native byte order). The kernel's LUO files have no
// compat_ioctl, so a 32-bit program (GOARCH=386, arm, mips, mipsle) on a
// 64-bit kernel gets ENOTTY for every request: build for the kernel's own
// architecture.
//
// On systems other than Linux the package builds, and every call that
// would reach a device returns ErrNotSupported.
package liveupdate
