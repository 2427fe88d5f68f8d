//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// selftestsRecipe names the way buildSelftests compiles the liveupdate
// selftests; change it whenever that way changes.
const selftestsRecipe = "s2"

// selftestsKey is the cache key of the selftests of a source version.
func selftestsKey(version string) string {
	return sourceVersionDir(version) + "-" + selftestsRecipe
}

// selftestsSubdir is where the LUO selftests are in a kernel tree.
const selftestsSubdir = "tools/testing/selftests/liveupdate"

// selftestCFlags are the flags of the kselftest build (lib.mk and the
// liveupdate Makefile), plus -static so the programs run in an initramfs
// without a C library. khdr is the usr/include of the kernel's "make
// headers" (lib.mk's KHDR_INCLUDES); selftests is the tree's
// tools/testing/selftests, for kselftest.h and kselftest_harness.h.
func selftestCFlags(khdr, selftests string) []string {
	return []string{"-static", "-O2", "-Wall", "-Wno-unused-function", "-D_GNU_SOURCE=",
		"-isystem", khdr, "-I", selftests}
}

// selftestPrograms is what the liveupdate selftests' Makefile builds: the
// programs (TEST_GEN_PROGS and TEST_GEN_PROGS_EXTENDED) and the C files
// each is linked with (LIB_C).
type selftestPrograms struct {
	Progs []string
	Lib   []string
}

// parseSelftestMakefile reads the program and library lists of a
// kselftest Makefile: "+=", ":=" and "=" assignments of TEST_GEN_PROGS,
// TEST_GEN_PROGS_EXTENDED and LIB_C, with backslash continuations.
func parseSelftestMakefile(b []byte) (selftestPrograms, error) {
	vars := map[string][]string{}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		i := strings.IndexByte(line, '=')
		if i <= 0 {
			continue
		}
		name, value, op := line[:i], line[i+1:], "="
		if c := name[len(name)-1]; c == '+' || c == ':' {
			name, op = name[:len(name)-1], string(c)+"="
		}
		name = strings.TrimSpace(name)
		switch name {
		case "TEST_GEN_PROGS", "TEST_GEN_PROGS_EXTENDED", "LIB_C":
		default:
			continue
		}
		if op != "+=" {
			vars[name] = nil
		}
		vars[name] = append(vars[name], strings.Fields(value)...)
	}
	p := selftestPrograms{
		Progs: append(vars["TEST_GEN_PROGS"], vars["TEST_GEN_PROGS_EXTENDED"]...),
		Lib:   vars["LIB_C"],
	}
	if len(p.Progs) == 0 {
		return p, fmt.Errorf("no TEST_GEN_PROGS")
	}
	for _, w := range append(append([]string{}, p.Progs...), p.Lib...) {
		if !isCName(w) {
			return p, fmt.Errorf("%q: not a plain file name", w)
		}
	}
	for _, c := range p.Lib {
		if !strings.HasSuffix(c, ".c") {
			return p, fmt.Errorf("LIB_C %q: not a .c file", c)
		}
	}
	return p, nil
}

// isCName reports whether w is a plain file name: letters, digits, '_',
// '-' and '.', not starting with '-' or '.'.
func isCName(w string) bool {
	for i, c := range w {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '.')
		if !ok {
			return false
		}
	}
	return w != ""
}

// buildSelftests returns a directory holding the kernel's own liveupdate
// selftests (liveupdate, luo_kexec_simple, luo_multi_session,
// luo_stress_sessions, luo_stress_files: whatever the Makefile in
// tools/testing/selftests/liveupdate lists), compiled from src as static
// x86_64 programs, building them unless the cache has them:
// cacheDir/selftests/<version>-<recipe>/, with build.log. The uapi headers
// come from "make headers" of src (not headers_install, which needs
// rsync). An empty cacheDir means
// defaultCacheDir. The programs are built from GPL source: they belong in
// the cache, not in a repository.
func buildSelftests(ctx context.Context, src kernelSource, cacheDir string, log io.Writer) (dir string, err error) {
	cacheDir, err = resolveCacheDir(cacheDir)
	if err != nil {
		return "", err
	}
	return cachedBuild(ctx, cacheDir, "selftests", selftestsKey(src.Version), log,
		func(st *steps, work, stage string) error {
			return makeSelftests(ctx, st, src, work, stage)
		})
}

// makeSelftests makes the uapi headers in work and compiles the programs
// into stage.
func makeSelftests(ctx context.Context, st *steps, src kernelSource, work, stage string) error {
	if !exists(filepath.Join(src.Dir, "Makefile")) {
		return fmt.Errorf("%s: no kernel tree at %q", st.what, src.Dir)
	}
	for _, d := range []string{src.Dir, work} {
		if err := kbuildPathError(d); err != nil {
			return err
		}
	}
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("selftests: the host's gcc builds for %s, not for the x86_64 guest", runtime.GOARCH)
	}
	if err := ensureTools(ctx, st.progress, buildTools); err != nil {
		return err
	}
	testDir := filepath.Join(src.Dir, selftestsSubdir)
	mf, err := os.ReadFile(filepath.Join(testDir, "Makefile"))
	if err != nil {
		return fmt.Errorf("selftests: %w", err)
	}
	progs, err := parseSelftestMakefile(mf)
	if err != nil {
		return fmt.Errorf("selftests: %s/Makefile: %w", testDir, err)
	}
	obj := filepath.Join(work, "obj")
	st.say("make headers (%s %s)", sourcePackage, src.Version)
	if err := st.run(ctx, src.Dir, kbuildEnv, "make", "-C", src.Dir, "O="+obj, kbuildArch, "headers"); err != nil {
		return err
	}
	khdr := filepath.Join(obj, "usr", "include")
	if !exists(filepath.Join(khdr, "linux", "liveupdate.h")) {
		return fmt.Errorf("selftests: make headers made no %s/linux/liveupdate.h", khdr)
	}
	cflags := selftestCFlags(khdr, filepath.Dir(testDir))
	var objs []string
	for _, c := range progs.Lib {
		o := filepath.Join(work, strings.TrimSuffix(c, ".c")+".o")
		if err := st.run(ctx, testDir, nil, "gcc", append(cflags, "-c", c, "-o", o)...); err != nil {
			return err
		}
		objs = append(objs, o)
	}
	st.say("gcc -static %s", strings.Join(progs.Progs, " "))
	for _, p := range progs.Progs {
		args := append(append(append([]string{}, cflags...), p+".c"), objs...)
		if err := st.run(ctx, testDir, nil, "gcc", append(args, "-o", filepath.Join(stage, p))...); err != nil {
			return err
		}
	}
	return nil
}
