// Command handoff is the canonical live-update agent: it keeps a small
// state, a counter and a message, in a memfd across a kexec with the Linux
// Live Update Orchestrator (LUO).
//
// Stage 1, before the update, creates the session "handoff", writes the
// state (counter 41, message "hello from the previous kernel") into a memfd
// and preserves it under token 1. The live update happens. Stage 2, in the
// next kernel, retrieves the session and the memfd, checks the state, prints
// it with the counter incremented, and finishes the session.
//
// Usage:
//
//	handoff                                      # the whole story on an in-process fake kernel
//	handoff -image FILE -stage 1|2               # two processes on a fake kernel
//	handoff -device /dev/liveupdate -stage 1|2   # a real kernel, kexec between the stages
//
// With no flags, handoff runs stage 1, the live update and stage 2 on a
// fake kernel (package liveupdate/fake) in this one process, and narrates
// each step.
//
// With -image, each stage is its own process on a fake kernel: stage 1 ends
// with the fake's kexec, which writes the handed-over state (a KHO image) to
// FILE, and stage 2 boots a fake kernel from FILE.
//
// With -device, the stages run on a real kernel (CONFIG_LIVEUPDATE, booted
// with liveupdate=on), as root: stage 1, then a kexec, then stage 2 in the
// next kernel. The kernel drops an outgoing session when its last fd is
// closed, so stage 1 hands the session to a detached copy of itself that
// holds it until the kexec (package liveupdate/hold) and prints that
// copy's pid. Load and run the kexec yourself (kexec -l, then kexec -e): a
// kexec that first stops every process, such as systemctl kexec, also stops
// the holder, and the session with it. The stage code is the same in every
// mode: it takes a *liveupdate.Device.
//
// The exit status is 0 when the stage (or the whole story) succeeded and the
// state came back as it was preserved, 1 when anything failed, and 2 for a
// usage error.
package main
