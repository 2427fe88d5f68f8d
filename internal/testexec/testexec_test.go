package testexec

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestCombinedOutput(t *testing.T) {
	if os.Getenv("TESTEXEC_CHILD") == "1" {
		os.Stdout.WriteString("child here")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCombinedOutput$")
	cmd.Env = append(os.Environ(), "TESTEXEC_CHILD=1")
	out, err := CombinedOutput(cmd)
	if err != nil || !strings.Contains(string(out), "child here") {
		t.Fatalf("CombinedOutput: %q, %v", out, err)
	}
}

func TestCombinedOutputOtherError(t *testing.T) {
	cmd := exec.Command("/nonexistent/program")
	if _, err := CombinedOutput(cmd); err == nil {
		t.Fatal("running a missing program succeeded")
	}
}
