// Package testexec runs a test binary again as a child process, as tests
// that need a second process do, also where the binary is not the host's:
// under qemu-user without binfmt_misc (go test -exec qemu-ARCH-static,
// as CI runs the big-endian tests), the host cannot execute it itself, so
// it runs through the same emulator.
package testexec

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// CombinedOutput runs cmd and returns its combined output, as
// exec.Cmd.CombinedOutput does. If the host cannot execute cmd's program
// (ENOEXEC, "exec format error") it runs the same command again through
// qemu-GOARCH-static, when that is on PATH; otherwise it returns the
// first error.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	retry := *cmd
	out, err := cmd.CombinedOutput()
	if err == nil || !(errors.Is(err, syscall.ENOEXEC) || strings.Contains(err.Error(), "exec format error")) {
		return out, err
	}
	q, lerr := exec.LookPath("qemu-" + runtime.GOARCH + "-static")
	if lerr != nil {
		return out, err
	}
	retry.Args = append([]string{q}, cmd.Args...)
	retry.Path = q
	retry.Err = nil
	retry.Stdout, retry.Stderr = nil, nil
	return retry.CombinedOutput()
}
