// Package hold keeps outgoing LUO sessions open until the kexec, in a
// detached copy of the running program, as the kernel's selftests do with
// daemonize_and_wait().
//
// The kernel drops an outgoing session when the last copy of its fd is
// closed, so a stage-1 agent that preserves its state and then exits loses
// that state unless some process holds the session fds through the kexec.
// Detach starts this program again, with the session fds inherited
// (exec.Cmd.ExtraFiles) and in a new session (setsid), so that it outlives
// the command that started it and the terminal it ran in; the copy checks
// that it got LUO sessions, says so, and then waits for the kexec. Killing
// it drops the sessions.
//
// A program that uses Detach calls Main first thing in main (and in
// TestMain, when a test binary calls Detach): Main turns the copy, started
// with the hidden flag Flag, into the holder.
//
// The package needs Linux.
package hold
