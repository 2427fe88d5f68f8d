//go:build linux

package conformance

import (
	"os"
	"os/exec"
	"testing"

	"github.com/go-luo/luo/internal/fdtest"
)

// testCase is one behaviour of the kernel, checked by run.
type testCase struct {
	name string
	run  func(e *env)
}

// group is a set of cases run as subtests of one subtest.
type group struct {
	name  string
	cases []testCase
}

// groups lists every case of the suite.
func groups() []group {
	return []group{
		{"selftest", selftestCases()},
		{"device", deviceCases()},
		{"create", createCases()},
		{"retrieve_session", retrieveSessionCases()},
		{"direction", directionCases()},
		{"dispatch_device", deviceDispatchCases()},
		{"dispatch_session", sessionDispatchCases()},
		{"preserve", preserveCases()},
		{"retrieve_fd", retrieveFDCases()},
		{"finish", finishCases()},
		{"release", releaseCases()},
		{"limits", limitCases()},
		{"fds", fdCases()},
		{"socket", socketCases()},
		{"kexec", kexecCases()},
		{"linux72", linux72Cases()},
	}
}

// Run runs every case of the suite against tgt, each as a subtest of t
// named GROUP/CASE (for example "preserve/bad_fd_EBADF").
// Cases run one after another, never in parallel: the device is exclusive
// and each case checks that it left no descriptor open.
//
// A case reports each behaviour that differs from the kernel's with the
// request, the errno it got and the errno the kernel gives (it stops at the
// first one that later steps depend on). Cases that
// need a feature the target lacks (see Features) or a kexec (Target.Kexec
// nil) skip and say so.
func Run(t *testing.T, tgt Target) {
	t.Helper()
	if tgt.Open == nil {
		t.Fatal("conformance: Target.Open is nil")
	}
	if tgt.Name == "" {
		tgt.Name = "target"
	}
	warmUp()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					before := fdtest.Table()
					t.Cleanup(func() { checkFDs(t, before) })
					c.run(&env{T: t, tgt: tgt, f: tgt.Features})
				})
			}
		})
	}
}

// warmUp makes the Go runtime open the descriptors it keeps for good (the
// network poller's, those of starting a process) before the first
// descriptor count, so that they do not look like a case's leak.
func warmUp() {
	if r, w, err := os.Pipe(); err == nil {
		w.Write([]byte{0})
		r.Read(make([]byte, 1))
		r.Close()
		w.Close()
	}
	if p, err := exec.LookPath("true"); err == nil {
		exec.Command(p).Run()
	}
}
