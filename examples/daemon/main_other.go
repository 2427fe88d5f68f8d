//go:build !linux

package main

import (
	"fmt"
	"os"
)

// main says that this program needs Linux: LUO is a Linux kernel feature,
// and the fake kernel serves its fds over unix sockets with SCM_RIGHTS.
func main() {
	fmt.Fprintln(os.Stderr, "daemon: needs Linux (the Live Update Orchestrator is a Linux kernel feature)")
	os.Exit(1)
}
