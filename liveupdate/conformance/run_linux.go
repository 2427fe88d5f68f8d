//go:build linux

package conformance

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/liveupdate"
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

// suite is one Run: what its cases found, and in a split run the sessions
// they hand to the next boot.
type suite struct {
	tgt Target

	mu      sync.Mutex
	results Results
	held    []*liveupdate.Session
}

// Run runs every case of the suite against tgt, each as a subtest of t
// named GROUP/CASE (for example "preserve/bad_fd_EBADF"), and returns
// what each case that ran found. Cases run one after another, never in
// parallel: the device is exclusive and each case checks that it left no
// descriptor open.
//
// A case reports each behaviour that differs from the kernel's with the
// request, the errno it got and the errno the kernel gives (it stops at the
// first one that later steps depend on). Cases that need a feature the
// target lacks (see Features) or a kexec (Target.Kexec and Target.Split
// nil) skip and say so.
//
// With Target.Split, Run runs one boot of a split run: in boot 0 every
// case, each case that spans live updates only as far as its first stage;
// in boot N > 0 only the stage N of the cases that have one (the others do
// not run, and have no subtest). At the end of every boot but the last it
// hands the sessions the next stages need to Split.Hold.
func Run(t *testing.T, tgt Target) Results {
	t.Helper()
	if tgt.Open == nil {
		t.Fatal("conformance: Target.Open is nil")
	}
	if tgt.Name == "" {
		tgt.Name = "target"
	}
	if sp := tgt.Split; sp != nil {
		if tgt.Kexec != nil {
			t.Fatal("conformance: Target.Kexec and Target.Split are both set: in a split run every live update is a real kexec between boots")
		}
		if err := sp.check(); err != nil {
			t.Fatalf("conformance: Target.Split: %v", err)
		}
		if sp.Hold == nil && sp.Boot+1 < SplitBoots() {
			t.Fatalf("conformance: Target.Split.Hold is nil, but boot %d is followed by boot %d, which needs the sessions held", sp.Boot, sp.Boot+1)
		}
	}
	warmUp()
	su := &suite{tgt: tgt, results: Results{}}
	start := fdtest.Table()
	for _, g := range groups() {
		cases := su.casesOf(g)
		if len(cases) == 0 {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { su.runCase(t, g.name+"/"+c.name, c) })
			}
		})
	}
	if sp := tgt.Split; sp != nil && sp.Boot+1 < SplitBoots() {
		su.hold(t, start)
	}
	su.mu.Lock()
	defer su.mu.Unlock()
	return su.results
}

// casesOf returns the cases of g that run in this boot: every case
// outside a split run and in its boot 0, else those with a stage in it.
func (su *suite) casesOf(g group) []testCase {
	sp := su.tgt.Split
	if sp == nil || sp.Boot == 0 {
		return g.cases
	}
	var cs []testCase
	for _, c := range g.cases {
		if stageCount(g.name+"/"+c.name) > sp.Boot {
			cs = append(cs, c)
		}
	}
	return cs
}

// runCase runs c as the subtest t and records its outcome as id.
func (su *suite) runCase(t *testing.T, id string, c testCase) {
	e := &env{T: t, tgt: su.tgt, f: su.tgt.Features, su: su, id: id}
	t.Cleanup(func() { su.record(id, e) }) // first, so it runs last
	before := fdtest.Table()
	t.Cleanup(func() { checkFDs(t, before, e.heldFD) })
	c.run(e)
	e.mu.Lock()
	staged := e.staged
	e.mu.Unlock()
	if sp := su.tgt.Split; sp != nil && !staged && stageCount(id) > 0 {
		e.Errorf("conformance: stagePlan gives case %s %d stages, but it did not call stages in boot %d of a split run", id, stageCount(id), sp.Boot)
	}
}

// record enters the outcome of the case e ran as id.
func (su *suite) record(id string, e *env) {
	res := Result{Status: Pass}
	switch {
	case e.Failed():
		res.Status = Fail
	case e.Skipped():
		res.Status = Skip
		res.Reason = oneLine(e.skipReason())
	}
	su.mu.Lock()
	su.results[id] = res
	su.mu.Unlock()
}

// keep adds sessions of a case to those handed to the next boot.
func (su *suite) keep(ss ...*liveupdate.Session) {
	su.mu.Lock()
	su.held = append(su.held, ss...)
	su.mu.Unlock()
}

// heldOutgoing returns how many outgoing sessions the run keeps for the
// next boot: they count against the target's session limit.
func (su *suite) heldOutgoing() int {
	su.mu.Lock()
	defer su.mu.Unlock()
	n := 0
	for _, s := range su.held {
		if s.Direction() == liveupdate.Outgoing && s.Fd() >= 0 {
			n++
		}
	}
	return n
}

// hold ends a boot of a split run that another follows: it hands the kept
// sessions to Split.Hold, closes those still open, and checks that the run
// left no descriptor open (start: the descriptors before it).
func (su *suite) hold(t *testing.T, start map[int]string) {
	t.Helper()
	su.mu.Lock()
	held := su.held
	su.held = nil
	su.mu.Unlock()
	if err := su.tgt.Split.Hold(held); err != nil {
		t.Errorf("conformance: boot %d: hold %d sessions for the kexec: %v", su.tgt.Split.Boot, len(held), err)
	}
	for _, s := range held {
		if s.Fd() >= 0 {
			s.Close()
		}
	}
	checkFDs(t, start, nil)
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
