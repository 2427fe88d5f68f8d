//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// hostTool is a program or file that fetching or building needs, and the
// Debian package that provides it.
type hostTool struct {
	name    string // a command looked up in $PATH, or an absolute file path
	pkg     string // the Debian package that provides it
	purpose string
}

// buildTools are what fetchSource, buildKernel and buildSelftests run.
// gelf.h stands for libelf-dev, which objtool needs on x86_64; libc.a for
// the static C library the selftests link against.
var buildTools = []hostTool{
	{"apt-get", "apt", "fetch the kernel source"},
	{"apt-cache", "apt", "fetch the kernel source"},
	{"dpkg-deb", "dpkg", "unpack the kernel source package"},
	{"tar", "tar", "unpack the kernel source"},
	{"xz", "xz-utils", "unpack the kernel source"},
	{"make", "make", "build the kernel"},
	{"gcc", "gcc", "build the kernel and the selftests"},
	{"flex", "flex", "build the kernel"},
	{"bison", "bison", "build the kernel"},
	{"bc", "bc", "build the kernel"},
	{"cpio", "cpio", "build the kernel"},
	{"/usr/include/gelf.h", "libelf-dev", "build objtool"},
	{"/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev", "link the selftests statically"},
}

// vmTools are what booting the kernel needs.
var vmTools = []hostTool{
	{"qemu-system-x86_64", "qemu-system-x86", "boot the kernel"},
}

// missingTools returns the tools that are not there: commands not found by
// lookPath, files not found by stat.
func missingTools(tools []hostTool, lookPath func(string) (string, error), stat func(string) (os.FileInfo, error)) []hostTool {
	var miss []hostTool
	for _, t := range tools {
		var err error
		if strings.HasPrefix(t.name, "/") {
			_, err = stat(t.name)
		} else {
			_, err = lookPath(t.name)
		}
		if err != nil {
			miss = append(miss, t)
		}
	}
	return miss
}

// packagesOf returns the Debian packages that provide tools, each once, in
// order.
func packagesOf(tools []hostTool) []string {
	var pkgs []string
	for _, t := range tools {
		if !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	return pkgs
}

// installArgs are the arguments of the machine's own apt-get that install
// pkgs without recommends and without questions.
func installArgs(pkgs []string) []string {
	return append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
}

// toolsOnce makes ensureTools try to install each set of packages at most
// once per process, so a failed install is not retried for each build.
var toolsOnce struct {
	sync.Mutex
	tried map[string]bool
}

// ensureTools checks that every one of tools is present. As root it
// installs the missing ones with the machine's apt-get ("apt-get update",
// then "apt-get install -y --no-install-recommends"); otherwise it fails
// naming what is missing and the packages to install.
func ensureTools(ctx context.Context, log io.Writer, tools []hostTool) error {
	miss := missingTools(tools, exec.LookPath, os.Stat)
	if len(miss) == 0 {
		return nil
	}
	pkgs := packagesOf(miss)
	if os.Geteuid() != 0 {
		return missingError(miss, pkgs)
	}
	toolsOnce.Lock()
	defer toolsOnce.Unlock()
	key := strings.Join(pkgs, " ")
	if toolsOnce.tried[key] {
		return missingError(missingTools(tools, exec.LookPath, os.Stat), pkgs)
	}
	if toolsOnce.tried == nil {
		toolsOnce.tried = map[string]bool{}
	}
	toolsOnce.tried[key] = true
	fmt.Fprintf(log, "tools: installing %s with apt-get\n", strings.Join(pkgs, " "))
	for _, args := range [][]string{{"update"}, installArgs(pkgs)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(out, tailLines))
		}
	}
	if miss := missingTools(tools, exec.LookPath, os.Stat); len(miss) > 0 {
		return missingError(miss, packagesOf(miss))
	}
	return nil
}

// missingError names the missing tools and the packages that provide them.
func missingError(miss []hostTool, pkgs []string) error {
	if len(miss) == 0 {
		return nil
	}
	var names []string
	for _, t := range miss {
		names = append(names, fmt.Sprintf("%s (to %s)", t.name, t.purpose))
	}
	return errors.New("missing build tools: " + strings.Join(names, ", ") +
		"; install them with: apt-get install " + strings.Join(pkgs, " "))
}
