//go:build linux

package main

import _ "embed"

// luoKernelConfig is the kernel config fragment luo-kernel.config: what
// buildKernel merges on top of tinyconfig for a kernel that boots in QEMU
// with LUO and can kexec into itself.
//
//go:embed luo-kernel.config
var luoKernelConfig []byte
