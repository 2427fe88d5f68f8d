//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import "runtime"

// The main goroutine keeps the main thread to itself, so that no other
// goroutine runs there. startFiltered installs the seccomp filter on the
// thread of a goroutine that exits locked to it, which ends that thread
// and drops its reference to the filter; the main thread cannot end, so
// Go parks it forever instead, and a filter installed there would keep a
// user for good: the listener would never hang up when the tree has gone,
// and luoemu would never exit.
func init() {
	runtime.LockOSThread()
}
