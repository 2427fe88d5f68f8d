//go:build linux && !amd64

package main

import "errors"

// kexecFileLoad fails: luovm's guest is x86_64, as the kernel it boots.
func kexecFileLoad(kernel, initrd int, cmdline string) error {
	return errors.New("luovm's guest runs on x86_64 only")
}
