// Command luovm is the VM lane: it boots a Linux kernel with the Live
// Update Orchestrator in QEMU and runs, across real kexecs, the kernel's
// own LUO selftests, the conformance suite (each case's stages in
// successive boots), the kexec selftests, luoctl check and every example's
// -device mode, and it pins the kernel bugs the fake models. Its diff
// chain runs 512 generated LUO programs (package internal/luoprog) across
// 34 boots and compares each program stage's trace with the fake's.
//
// Usage:
//
//	go run ./cmd/luovm [-kernel bzImage] [-chains NAMES] [-out DIR]
//	                   [-conformance-results FILE] [-want-conformance FILE]
//	go run ./cmd/luovm -selftests-dir
//
// Without -kernel, luovm fetches Debian's linux-source-7.2 through apt with
// a private sources list derived from the machine's own (which it leaves
// as it is), builds an x86_64 kernel from tinyconfig and the fragment
// luo-kernel.config beside this file, and compiles the kernel's selftests
// statically; each is cached below -cache (default ~/.cache/go-luo) under
// a key of the package version and the recipe, so a second run builds
// nothing. With -selftests-dir it does only the source and the
// selftests, boots nothing, and prints the selftests' directory on stdout
// (its log goes to stderr), for tests that run them elsewhere (cmd/luoemu's).
// As root it installs the build tools and QEMU with the machine's
// apt-get when they are missing.
//
// A run is a set of chains, each one QEMU process: boot 0 starts from
// QEMU, and each later boot is a kexec (kexec_file_load, then reboot) from
// the one before. The guest is luovm itself, PID 1 of an initramfs it
// writes (package internal/newc): it runs the steps of the boot its command
// line names (luovm.chain=NAME luovm.boot=N), reports each result on the
// second serial port, keeps the sessions the conformance suite hands it
// (conformance.HoldEnv) open until the kexec, rebuilds its initramfs from
// its own files and kexecs into the next boot. The host turns what came
// back into one result per test, with a failure for each boot that never
// came up or never finished, and for each boot that should panic (a kernel
// bug) and did not.
//
// luovm prints every failure and skip, counts per kind of test, and a last
// line "vm: N passed, N failed, N skipped"; it exits 1 on any failure, 2
// on a usage error. A conformance case that skips for want of a kexec
// counts as a failure. Consoles and results stay in -out.
//
// QEMU runs with TCG by default: nested KVM may hang in the kernel's
// decompressor. The command needs Linux.
package main
