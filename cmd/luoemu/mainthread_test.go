//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// No goroutine but the main one runs on the main thread, which the Go
// runtime never ends: startFiltered's goroutine, locked to its thread to
// take the filter with it when it ends, must never land there (the filter
// would outlive the tree, its listener would never hang up and luoemu
// would hang). Without seccomp_linux.go's init every one of these lands
// there in the test binary.
func TestLockedGoroutinesMissTheMainThread(t *testing.T) {
	for i := range 100 {
		ch := make(chan bool)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ch <- unix.Gettid() == unix.Getpid()
		}()
		if <-ch {
			t.Fatalf("goroutine %d ran locked on the main thread", i)
		}
	}
}
