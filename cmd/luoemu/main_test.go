//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-luo/luo/internal/testexec"
)

// helperEnv, when set in the environment, makes the test binary run the
// test helper of that name (registered in testHelpers by the test files)
// instead of the tests: the programs the tests run under luoemu.
const helperEnv = "LUOEMU_TEST_HELPER"

// testHelpers are the programs the test binary can be, by name.
var testHelpers = map[string]func(args []string) int{}

// luoemuName is the name under which the test binary is luoemu: TestMain
// runs main for a process started as it.
const luoemuName = "luoemu"

// luoemuBin is the luoemu binary of the tests: a link to (or a copy of)
// the test binary named luoemuName, which holds every file of package
// main, so that the tests need no "go build" of their own.
var luoemuBin string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == luoemuName {
		main()
	}
	if name := os.Getenv(helperEnv); name != "" {
		h, ok := testHelpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "no test helper %q\n", name)
			os.Exit(2)
		}
		os.Exit(h(os.Args[1:]))
	}
	if err := supported(); err != nil {
		// A container may block seccomp user notification or
		// pidfd_getfd: luoemu cannot run there, which luoemu check
		// reports. CI, which has them, requires them.
		if os.Getenv("LUOEMU_SELFTESTS_REQUIRED") == "1" {
			fmt.Fprintf(os.Stderr, "luoemu cannot run here, and LUOEMU_SELFTESTS_REQUIRED=1: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("skipping the luoemu tests: %v\n", err)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "luoemu-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	luoemuBin = filepath.Join(dir, luoemuName)
	if err := testexec.LinkSelf(luoemuBin); err != nil {
		fmt.Fprintf(os.Stderr, "the luoemu binary: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helperCommand returns the command that runs the test helper name with
// args, to run under luoemu or as it is.
func helperCommand(t testing.TB, name string, args ...string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"env", helperEnv + "=" + name, self}, args...)
}

// luoemu returns a command that runs argv under the luoemu binary with flags.
func luoemu(flags []string, argv ...string) *exec.Cmd {
	return exec.Command(luoemuBin, append(append(flags, "--"), argv...)...)
}

func TestCheck(t *testing.T) {
	out, err := exec.Command(luoemuBin, "check").CombinedOutput()
	if err != nil {
		t.Fatalf("luoemu check: %v\n%s", err, out)
	}
}
