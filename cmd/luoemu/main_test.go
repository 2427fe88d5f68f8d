//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// helperEnv, when set in the environment, makes the test binary run the
// test helper of that name (registered in testHelpers by the test files)
// instead of the tests: the programs the tests run under luoemu.
const helperEnv = "LUOEMU_TEST_HELPER"

// testHelpers are the programs the test binary can be, by name.
var testHelpers = map[string]func(args []string) int{}

// luoemuBin is the luoemu binary TestMain builds for the tests.
var luoemuBin string

func TestMain(m *testing.M) {
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
	luoemuBin = filepath.Join(dir, "luoemu")
	if out, err := exec.Command("go", "build", "-o", luoemuBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build luoemu: %v\n%s", err, out)
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
