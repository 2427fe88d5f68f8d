//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// kernelRecipe names the way buildKernel turns a source tree and a fragment
// into a bzImage. Change it whenever that way changes, so that kernels
// built the old way are not taken from the cache.
const kernelRecipe = "luovm-kernel-2: ARCH=x86 tinyconfig, merge_config.sh -m, olddefconfig, bzImage"

// kbuildArch is the ARCH of every make: "x86", what kbuild picks on an
// x86_64 host, not "x86_64". tinyconfig is allnoconfig, and with
// ARCH=x86_64 it also answers n to the prompts that exist only on 64-bit
// (X86_KERNEL_IBT, VMAP_STACK, X86_VSYSCALL_EMULATION,
// X86_INTEL_MEMORY_PROTECTION_KEYS...); with ARCH=x86 it makes a 32-bit
// config, the fragment's CONFIG_64BIT=y turns it 64-bit, and olddefconfig
// gives those options their defaults. ARCH=x86 is the config the fragment
// was tested with.
const kbuildArch = "ARCH=x86"

// kernelKey is the cache key of a kernel: the source package version and
// a hash of the recipe and the fragment.
func kernelKey(version string, fragment []byte) string {
	h := sha256.New()
	h.Write([]byte(kernelRecipe))
	h.Write([]byte{0})
	h.Write(fragment)
	return sourceVersionDir(version) + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// kbuildEnv fixes what a kernel records about its builder.
var kbuildEnv = []string{"KBUILD_BUILD_USER=luovm", "KBUILD_BUILD_HOST=luovm"}

// buildKernel returns the path of an x86_64 bzImage built from src with
// fragment merged on top of tinyconfig, building it unless the cache has
// it: cacheDir/kernel/<kernelKey>/bzImage, with the kernel's .config, the
// fragment (luo-kernel.config) and build.log beside it. An empty cacheDir
// means defaultCacheDir.
//
// The steps are "make tinyconfig", "merge_config.sh -m" of the fragment,
// "make olddefconfig", a check that every assignment of the fragment
// survived olddefconfig (an option whose dependencies are not met is
// dropped silently; the error names each), and "make -j<cpus> bzImage".
// Progress lines go to log; make's output goes to the build log, whose
// tail is printed to log when a step fails.
func buildKernel(ctx context.Context, src kernelSource, fragment []byte, cacheDir string, log io.Writer) (bzImage string, err error) {
	cacheDir, err = resolveCacheDir(cacheDir)
	if err != nil {
		return "", err
	}
	if len(parseConfig(fragment)) == 0 {
		return "", fmt.Errorf("kernel: the config fragment sets no CONFIG_ option")
	}
	dir, err := cachedBuild(ctx, cacheDir, "kernel", kernelKey(src.Version, fragment), log,
		func(st *steps, work, stage string) error {
			return makeKernel(ctx, st, src, fragment, work, stage)
		})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bzImage"), nil
}

// makeKernel builds in work (make's O=) and leaves bzImage, .config and
// luo-kernel.config in stage.
func makeKernel(ctx context.Context, st *steps, src kernelSource, fragment []byte, work, stage string) error {
	if !exists(filepath.Join(src.Dir, "Makefile")) {
		return fmt.Errorf("%s: no kernel tree at %q", st.what, src.Dir)
	}
	for _, d := range []string{src.Dir, work} {
		if err := kbuildPathError(d); err != nil {
			return err
		}
	}
	if runtime.GOARCH != "amd64" && os.Getenv("CROSS_COMPILE") == "" {
		return fmt.Errorf("kernel: this host is %s; set CROSS_COMPILE to build an x86_64 kernel", runtime.GOARCH)
	}
	if err := ensureTools(ctx, st.progress, buildTools); err != nil {
		return err
	}
	fragPath := filepath.Join(stage, "luo-kernel.config")
	if err := os.WriteFile(fragPath, fragment, 0o644); err != nil {
		return err
	}
	mk := func(targets ...string) error {
		args := append([]string{"-C", src.Dir, "O=" + work, kbuildArch}, targets...)
		return st.run(ctx, src.Dir, kbuildEnv, "make", args...)
	}
	config := filepath.Join(work, ".config")
	st.say("make tinyconfig in %s (%s %s)", work, sourcePackage, src.Version)
	if err := mk("tinyconfig"); err != nil {
		return err
	}
	st.say("merging %d options of the fragment", len(parseConfig(fragment)))
	merge := filepath.Join(src.Dir, "scripts", "kconfig", "merge_config.sh")
	if err := st.run(ctx, src.Dir, kbuildEnv, "sh", merge, "-m", "-O", work, config, fragPath); err != nil {
		return err
	}
	if err := mk("olddefconfig"); err != nil {
		return err
	}
	final, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	if dropped := droppedOptions(fragment, final); len(dropped) > 0 {
		return fmt.Errorf("kernel: olddefconfig dropped %d options of the fragment (dependencies not met?): %s; config in %s",
			len(dropped), strings.Join(dropped, ", "), config)
	}
	n := runtime.NumCPU()
	st.say("make -j%d bzImage (output in %s)", n, st.logPath)
	if err := mk("-j"+strconv.Itoa(n), "bzImage"); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(work, "arch", "x86", "boot", "bzImage"), filepath.Join(stage, "bzImage")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stage, ".config"), final, 0o644)
}
