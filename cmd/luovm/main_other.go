//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "luovm: needs Linux (it builds and boots Linux kernels in QEMU)")
	os.Exit(2)
}
