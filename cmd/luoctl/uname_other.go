//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

// kernelRelease fails: live update is a Linux feature.
func kernelRelease() (string, error) {
	return "", fmt.Errorf("this is %s, not Linux", runtime.GOOS)
}
