//go:build !linux || !(amd64 || arm64 || riscv64 || loong64)

// Command luoemu runs programs with a fake kernel's LUO. It needs Linux
// on amd64, arm64, riscv64 or loong64; elsewhere it says so.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "luoemu: not supported on %s/%s (it runs on linux/amd64, arm64, riscv64 and loong64)\n", runtime.GOOS, runtime.GOARCH)
	os.Exit(1)
}
