// Command daemon shows the delegation pattern of the Linux Live Update
// Orchestrator (LUO): one process, the daemon, owns the LUO device and hands
// session fds to its clients over a unix socket, so that clients that may
// not open the device (the kernel lets one process at a time hold it) still
// preserve their own files across a kexec.
//
// Usage:
//
//	daemon                                  # the whole story on a fake kernel, in one command
//	daemon -device PATH [-socket SOCKET]    # serve a real kernel's device until SIGINT or SIGTERM
//	daemon -client SOCKET [-name NAME]      # run the client once against a daemon
//
// With no flags, daemon runs the story on a fake kernel (package
// liveupdate/fake): the daemon, in this process, opens the device and
// listens on a unix socket; a client, started as a child process (this
// program again, with -client), asks for its session, receives the session
// fd with package liveupdate/fdpass (SCM_RIGHTS, with the session's name
// and direction) and preserves a memfd in it, then exits. The daemon keeps the session open. The fake
// kernel performs the live update, the daemon starts again in the next
// kernel, and a new client asks for the same session: the daemon retrieves
// it from the previous kernel and hands it over, and the client retrieves
// its memfd, checks it and finishes the session. Every fd crosses a process
// boundary, as it would in production.
//
// With -device, the daemon serves a real kernel's device (usually
// /dev/liveupdate; root) on SOCKET until it is stopped. Run clients with
// -client before the update, then kexec while the daemon still runs (kexec
// -e; a kexec that first stops every process, such as systemctl kexec, stops
// the daemon too, which drops the sessions), then start the daemon and the
// clients again in the next kernel.
//
// # Protocol
//
// A client connects to the socket and sends lines; the daemon answers each:
//
//	SESSION NAME\n  ->  OK\n           then the session, sent with fdpass.Send
//	                    ERR MESSAGE\n   without a session
//
// NAME is a LUO session name (1 to 63 bytes). If the previous kernel handed
// over a session of that name, the daemon retrieves it and hands it over
// (fdpass.Receive gives the client a session whose Direction is Incoming):
// the client retrieves its files and finishes it. The daemon
// closes its own copy once it has sent it, so the client owns an incoming
// session, and closing it finishes it. Otherwise the daemon creates an
// outgoing session of that name (or hands over again the one it created
// before) and keeps it open until the update; the client preserves its
// files in it and may exit.
//
// The exit status is 0 on success, 1 when anything failed, and 2 for a usage
// error.
package main
