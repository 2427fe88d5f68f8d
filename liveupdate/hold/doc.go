// Package hold keeps outgoing LUO sessions alive after the process that
// made them exits, by holding copies of their fds in a detached process
// until the kexec or until released.
//
// The lifetime rules it protects:
//
//   - The kernel drops an outgoing session, and unpreserves its files, when
//     the last copy of its fd is closed, and a process's fds close when it
//     exits. A stage-1 agent that preserves its state and then exits loses
//     that state unless some process still holds a copy of each session fd
//     when the kexec happens.
//   - Only sessions open at the kexec reach the next kernel. A kexec that
//     first stops every process (systemctl kexec, a shutdown sequence)
//     stops the holder too, and the sessions with it: load and start the
//     kexec yourself (kexec -l, then kexec -e) while the holder runs.
//   - After the kexec the holder is gone with the old kernel; the next
//     kernel's agent retrieves the sessions from /dev/liveupdate.
//
// Detach starts this program again (os.Executable), with copies of the
// session fds inherited (exec.Cmd.ExtraFiles) and in a new session
// (setsid), so that it outlives the command that started it and the
// terminal it ran in; the copy checks that it got LUO sessions, says so,
// and then waits. Holder.Release, or SIGTERM or SIGKILL to Holder.Pid from
// any process, ends it, and with its copies closed the sessions drop unless
// another process still has theirs. This is the role
// daemonize_and_wait() plays in the kernel's LUO selftests.
//
// A program that uses Detach calls Main first thing in main (and in
// TestMain, when a test binary calls Detach): Main turns the copy, started
// with the hidden flag Flag, into the holder.
//
// The package needs Linux; elsewhere Detach fails with an error matching
// errors.ErrUnsupported and Main returns at once.
package hold
