package main

import "golang.org/x/sys/unix"

// kexecFileLoad loads the kernel and initramfs of the next boot
// (kexec_file_load). The guest is x86_64, as the kernel luovm boots.
func kexecFileLoad(kernel, initrd int, cmdline string) error {
	return unix.KexecFileLoad(kernel, initrd, cmdline, 0)
}
