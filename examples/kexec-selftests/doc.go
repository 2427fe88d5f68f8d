// Command kexec-selftests runs the Linux kernel's four two-stage live-update
// selftests, luo_kexec_simple, luo_multi_session, luo_stress_sessions and
// luo_stress_files (tools/testing/selftests/liveupdate), ported to Go in
// package internal/kexectests. People who build LUO kernels run it to check
// them; it runs on the fake kernel of package liveupdate/fake too.
//
// Usage:
//
//	kexec-selftests [-test NAME]                               # both stages on an in-process fake kernel
//	kexec-selftests [-test NAME] -image FILE -stage 1|2        # two processes on a fake kernel
//	kexec-selftests [-test NAME] -device PATH -stage 1|2       # a real kernel, kexec between the stages
//
// NAME is simple, multi-session, stress-sessions, stress-files (or the C
// program's name, such as luo_kexec_simple), or all, the default. With all,
// every test runs its stage 1 before one live update and its stage 2 after
// it.
//
// With no -image or -device, the tests run stage 1, a live update and stage
// 2 on a fake kernel in this process. With -image, each stage is its own
// process on a fake kernel: stage 1's live update writes the handed-over
// state to FILE and stage 2 boots from it.
//
// With -device (usually /dev/liveupdate, as root, on a kernel built with
// CONFIG_LIVEUPDATE and booted with liveupdate=on), stage 1 creates the
// tests' sessions and hands them to a detached copy of this program that
// holds them until the kexec (the C tests fork a daemon for this), and
// prints its pid. Then kexec into the kernel under test (kexec -l KERNEL
// --reuse-cmdline, then kexec -e; not a kexec that stops every process
// first, which would stop the holder too), and run stage 2 there with the
// same -test.
//
// Each test's result is printed as PASSED, FAILED (with what failed: the
// test, stage, session, token, and for a wrong payload what was expected and
// found) or SKIPPED (RLIMIT_NOFILE could not be raised), and a passing test
// prints the C test's line, such as "--- SIMPLE KEXEC TEST PASSED ---". The
// exit status is 0 when no test failed, 1 when one did, and 2 for a usage
// error.
package main
