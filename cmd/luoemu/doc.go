// Command luoemu runs a program, in any language and unmodified, with a
// fake kernel's Live Update Orchestrator as its /dev/liveupdate:
//
//	luoemu [-image FILE] [-generation linux-7.2] [--] PROGRAM [ARGS...]
//	luoemu kexec [-control SOCKET]
//	luoemu check
//
// PROGRAM runs under a seccomp filter whose notifications luoemu answers
// from a fake kernel (package liveupdate/fake). The filter sends luoemu
// only opens (open, openat, openat2: a filter cannot read the path, so
// luoemu reads it and lets every other path's open go on), ioctls whose
// request has LUO's type 0xBA, reboot with LINUX_REBOOT_CMD_KEXEC,
// kexec_load and kexec_file_load (which succeed and load nothing) and,
// with -freeze (the default), the calls that can change a file's size:
// on a memfd the fake holds preserved, luoemu answers them as Linux 7.2
// does for its frozen size (EPERM for ftruncate, truncate and O_TRUNC
// opens to another size and for every fallocate; a write across the end
// stops at the last page boundary within it; one at or past the end, and
// a copy into it there, gets EPERM), and lets every other one go on.
// Every other system call runs in the kernel without entering the filter
// (the kernel's seccomp action cache allows it by number).
//
// Opening the device gives the program a fake device fd, the user's end
// of a socket the fake serves; LUO ioctls on fake fds are the fake's, with
// the kernel's checks, errnos and argument bytes; ioctls of type 0xBA on
// any other fd go on to the kernel. The fds can be passed, inherited and
// dup'd in the tree; the last close anywhere is the file's release, as on
// the kernel. Processes outside the tree are not served.
//
// The live update is reboot(LINUX_REBOOT_CMD_KEXEC) in the tree, or
// "luoemu kexec" (in the tree, or from outside with -control): the fake
// freezes the outgoing sessions into the -image file and the whole tree
// is killed. luoemu is a child subreaper, so daemons the tree forks stay
// in it. A second run with the same -image boots from it, with the
// sessions incoming, and consumes it.
//
// Run "luoemu check" to see whether this machine supports what luoemu
// needs: seccomp user notification with SECCOMP_ADDFD_FLAG_SEND (Linux
// 5.14), pidfd_getfd and ptrace rules that let luoemu take its children's
// fds (containers may block these).
package main
