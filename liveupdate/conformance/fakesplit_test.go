//go:build linux

package conformance_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/internal/testexec"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/conformance"
	"github.com/go-luo/luo/liveupdate/fake"
)

// The environment of TestFakeSplitChild, set by splitRun.
const (
	childDirEnv     = "LUO_CONFORMANCE_TEST_SPLIT_DIR"  // the image and results files
	childBootEnv    = "LUO_CONFORMANCE_TEST_SPLIT_BOOT" // Split.Boot
	childRunEnv     = "LUO_CONFORMANCE_TEST_SPLIT_RUN"  // Split.RunID
	childNoKexecEnv = "LUO_CONFORMANCE_TEST_SPLIT_LOSE" // "1": Hold does not kexec (a fault)
)

// TestFakeSplitChild runs one boot of a split run against a fake kernel
// that boots from the image file the previous boot's Hold wrote. It runs
// only in a process splitRun starts.
func TestFakeSplitChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs one boot of TestFakeSplit's split run, in a process TestFakeSplit starts")
	}
	boot, err := strconv.Atoi(os.Getenv(childBootEnv))
	if err != nil {
		t.Fatalf("%s: %v", childBootEnv, err)
	}
	tgt := fakeTarget(t, "fake linux-7.2, split", conformance.Linux7_2Features(), fake.WithImageFile(filepath.Join(dir, "image")))
	kexec := tgt.Kexec
	if os.Getenv(childNoKexecEnv) == "1" {
		kexec = func() error { return nil }
	}
	tgt.Kexec = nil
	tgt.Split = &conformance.Split{
		Boot:  boot,
		RunID: os.Getenv(childRunEnv),
		// The sessions stay open until the fake has written them into
		// the image that the next boot's fake starts from.
		Hold: func([]*liveupdate.Session) error { return kexec() },
	}
	r := conformance.Run(t, tgt)
	f, err := os.Create(filepath.Join(dir, "boot"+strconv.Itoa(boot)+".results"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := r.WriteTo(f); err != nil {
		t.Fatal(err)
	}
}

// splitBoot is what one boot of a split run found.
type splitBoot struct {
	results conformance.Results
	err     error  // the child failed (a case failed, or worse)
	output  []byte // the child's go test output
}

// splitRun runs boots boots of a split run against a fake kernel, each in
// a new process that runs TestFakeSplitChild (and of its cases those that
// pattern, a -test.run pattern for them, selects), with env added to the
// environment. It fails t only when a boot wrote no results.
func splitRun(t *testing.T, boots int, pattern string, env ...string) []splitBoot {
	t.Helper()
	dir := t.TempDir()
	run := "ct" + strconv.Itoa(os.Getpid())
	var out []splitBoot
	for boot := range boots {
		arg := "-test.run=^TestFakeSplitChild$"
		if pattern != "" {
			arg += "/" + pattern
		}
		cmd := exec.Command(os.Args[0], arg, "-test.count=1")
		cmd.Env = append(os.Environ(),
			childDirEnv+"="+dir,
			childBootEnv+"="+strconv.Itoa(boot),
			childRunEnv+"="+run)
		cmd.Env = append(cmd.Env, env...)
		output, err := testexec.CombinedOutput(cmd)
		b := splitBoot{err: err, output: output}
		f, ferr := os.Open(filepath.Join(dir, "boot"+strconv.Itoa(boot)+".results"))
		if ferr != nil {
			t.Fatalf("boot %d of the split run wrote no results (%v; the child: %v):\n%s", boot, ferr, err, output)
		}
		b.results, ferr = conformance.ParseResults(f)
		f.Close()
		if ferr != nil {
			t.Fatalf("boot %d: %v", boot, ferr)
		}
		out = append(out, b)
	}
	return out
}

// fakeSplit is the merged outcome of a full split run against the fake's
// default configuration, once TestFakeSplit (or TestFakeMatchesKernel) has
// made one.
var fakeSplit struct {
	sync.Mutex
	r conformance.Results
}

// fakeSplitResults returns the merged outcome of a full split run against
// the fake's default configuration, running it unless it has run, and
// fails t when a boot failed.
func fakeSplitResults(t *testing.T) conformance.Results {
	t.Helper()
	fakeSplit.Lock()
	defer fakeSplit.Unlock()
	if fakeSplit.r != nil {
		return fakeSplit.r
	}
	boots := splitRun(t, conformance.SplitBoots(), "")
	var all []conformance.Results
	failed := false
	for i, b := range boots {
		if b.err != nil {
			failed = true
			t.Errorf("boot %d of the split run failed (%v):\n%s", i, b.err, b.output)
		}
		all = append(all, b.results)
	}
	checkBootsRunTheirStages(t, all)
	merged := conformance.MergeResults(all...)
	if !failed && !t.Failed() {
		fakeSplit.r = merged
	}
	return merged
}

// checkBootsRunTheirStages checks that boot N > 0 ran exactly the cases
// with a stage N of those boot 0 ran.
func checkBootsRunTheirStages(t *testing.T, boots []conformance.Results) {
	t.Helper()
	for n := 1; n < len(boots); n++ {
		var want, got []string
		for id := range boots[0] {
			if conformance.StageCount(id) > n {
				want = append(want, id)
			}
		}
		for id := range boots[n] {
			got = append(got, id)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("boot %d ran %d cases %v, want the %d with a stage %d: %v", n, len(got), got, len(want), n, want)
		}
	}
}

// splitOnlyInProcess lists the cases that run in-process but not in a
// split run of the fake, each with the reason. (kexec/old_handles_* and
// kexec/size_change_* have split forms.)
var splitOnlyInProcess = map[string]string{
	"linux72/duplicate_create_at_51_sessions_next_boot": "its kexec boots a kernel that panics, which would end the chain; " +
		"the VM lane pins the kernel's panic in a chain of its own (luovm's bug-dup-create)",
}

// TestFakeSplit runs the suite as a split run against a fake kernel: each
// boot a new process that boots the fake from the image the previous
// boot's kexec wrote. No case may fail or skip for want of a kexec, and
// every case that ran in TestFakeLinux7_2 must run here too.
func TestFakeSplit(t *testing.T) {
	fdtest.Check(t, time.Second)
	merged := fakeSplitResults(t)
	for _, id := range sortedIDs(merged) {
		r := merged[id]
		switch {
		case r.Status == conformance.Fail:
			t.Errorf("%s failed in the split run", id)
		case r.Status == conformance.Skip && strings.Contains(r.Reason, "cannot kexec"):
			t.Errorf("%s skipped for want of a kexec in the split run: %s", id, r.Reason)
		}
	}
	defaultInProcess.Lock()
	inProcess := defaultInProcess.r
	defaultInProcess.Unlock()
	if inProcess == nil {
		// TestFakeLinux7_2 did not run in this process: run it now.
		t.Run("in-process", func(t *testing.T) {
			inProcess = conformance.Run(t, fakeTarget(t, "fake linux-7.2", conformance.Linux7_2Features()))
		})
	}
	for _, id := range sortedIDs(inProcess) {
		if inProcess[id].Status == conformance.Skip {
			continue
		}
		ran := merged[id].Status != conformance.Skip
		if _, ok := merged[id]; !ok {
			ran = false
		}
		why, excepted := splitOnlyInProcess[id]
		switch {
		case !ran && !excepted:
			t.Errorf("%s ran in-process but not in the split run (%v)", id, merged[id])
		case ran && excepted:
			t.Errorf("%s runs in the split run now: remove it from splitOnlyInProcess (%q)", id, why)
		}
	}
	if len(merged) == 0 || len(inProcess) == 0 {
		t.Errorf("nothing to compare: %d cases in the split run, %d in-process", len(merged), len(inProcess))
	}
}

// TestFakeSplitLoses shows that a split run notices sessions that do not
// survive the kexec: with a Hold that does not kexec, the next boot starts
// without them, and the case fails.
func TestFakeSplitLoses(t *testing.T) {
	fdtest.Check(t, time.Second)
	const id = "retrieve_fd/position_survives"
	boots := splitRun(t, 2, "^retrieve_fd$/^position_survives$", childNoKexecEnv+"=1")
	if boots[0].err != nil {
		t.Fatalf("boot 0, which only preserves, failed (%v):\n%s", boots[0].err, boots[0].output)
	}
	if got := boots[0].results[id]; got.Status != conformance.Pass || len(boots[0].results) != 1 {
		t.Fatalf("boot 0 results %v, want only %s passed", boots[0].results, id)
	}
	if got := boots[1].results[id]; got.Status != conformance.Fail || boots[1].err == nil {
		t.Fatalf("boot 1 after a Hold that kept nothing: %s %v (child: %v), want FAIL:\n%s", id, got, boots[1].err, boots[1].output)
	}
	if !strings.Contains(string(boots[1].output), "ENOENT") && !strings.Contains(string(boots[1].output), "no such") {
		t.Errorf("boot 1 failed, but not for want of the session:\n%s", boots[1].output)
	}
}

// kernelResults is what the VM lane found on Linux 7.2.13: the merged
// results of a split run of TestKernelConformance, as
// `go run ./cmd/luovm -conformance-results FILE` writes them (CI checks
// the kernel still gives them with -want-conformance).
const kernelResults = "testdata/linux-7.2.13.results"

// knownDifference is a case whose outcome differs between the fake's
// default configuration and the kernel, for a reason.
type knownDifference struct {
	fake, kernel conformance.Status
	why          string
}

// fakeVsKernel lists the known differences between the fake (split run,
// default configuration, as TestFakeSplit runs it) and Linux 7.2.13
// (TestKernelConformance in a split run).
var fakeVsKernel = map[string]knownDifference{
	"retrieve_fd/failed_retrieve_fails_the_same_way_again": {conformance.Pass, conformance.Skip,
		"the fake can make a file handler's retrieve fail (Target.FailRetrieve); the kernel's cannot be made to from userspace"},
	"fds/proc_link_holds_whole_name": {conformance.Skip, conformance.Pass,
		"a fake kernel's session fds are sockets, whose /proc/self/fd link is socket:[inode]; the kernel's are anonymous inodes named [luo_session] NAME"},
	"kexec/size_change_fails_kexec": {conformance.Pass, conformance.Skip,
		"the kernel freezes a preserved memfd's size (Features.SizeFreezeEnforced), so the size cannot change; the fake cannot freeze and checks sizes at kexec"},
}

// TestFakeMatchesKernel compares the fake with what a VM rig found on the
// kernel, case by case.
func TestFakeMatchesKernel(t *testing.T) {
	f, err := os.Open(kernelResults)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no %s: go run ./cmd/luovm -conformance-results writes it from a split run of liveupdate's TestKernelConformance on Linux 7.2.13", kernelResults)
	}
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := conformance.ParseResults(f)
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", kernelResults, err)
	}
	for _, p := range compareResults(fakeSplitResults(t), kernel, fakeVsKernel) {
		t.Error(p)
	}
}

// compareResults lists how the fake's results differ from the kernel's,
// apart from the known differences, and the known differences that are no
// longer as listed.
func compareResults(fakeR, kernelR conformance.Results, known map[string]knownDifference) []string {
	ids := map[string]bool{}
	for id := range fakeR {
		ids[id] = true
	}
	for id := range kernelR {
		ids[id] = true
	}
	for id := range known {
		ids[id] = true
	}
	show := func(r conformance.Results, id string) string {
		res, ok := r[id]
		switch {
		case !ok:
			return "absent"
		case res.Status == conformance.Skip:
			return "SKIP (" + res.Reason + ")"
		}
		return res.Status.String()
	}
	var problems []string
	for _, id := range sortedIDs(ids) {
		fr, fok := fakeR[id]
		kr, kok := kernelR[id]
		if k, ok := known[id]; ok {
			if !fok || !kok || fr.Status != k.fake || kr.Status != k.kernel {
				problems = append(problems, fmt.Sprintf("%s: known difference (fake %v, kernel %v: %s) is now fake %s, kernel %s: update fakeVsKernel",
					id, k.fake, k.kernel, k.why, show(fakeR, id), show(kernelR, id)))
			}
			continue
		}
		if !fok || !kok || fr.Status != kr.Status {
			problems = append(problems, fmt.Sprintf("%s: fake %s, kernel %s", id, show(fakeR, id), show(kernelR, id)))
		}
	}
	return problems
}

// TestCompareResults shows compareResults finding each kind of difference.
func TestCompareResults(t *testing.T) {
	pass, skip, fail := conformance.Result{Status: conformance.Pass}, conformance.Result{Status: conformance.Skip, Reason: "r"}, conformance.Result{Status: conformance.Fail}
	known := map[string]knownDifference{"g/known": {conformance.Pass, conformance.Skip, "why"}}
	same := conformance.Results{"g/a": pass, "g/b": skip, "g/known": pass}
	kernel := conformance.Results{"g/a": pass, "g/b": skip, "g/known": skip}
	if p := compareResults(same, kernel, known); len(p) != 0 {
		t.Errorf("equal results but for a known difference: %v", p)
	}
	for what, c := range map[string]struct {
		fake, kernel conformance.Results
	}{
		"fail vs pass":        {conformance.Results{"g/a": fail, "g/b": skip, "g/known": pass}, kernel},
		"case only on kernel": {conformance.Results{"g/b": skip, "g/known": pass}, kernel},
		"case only on fake":   {conformance.Results{"g/a": pass, "g/b": skip, "g/c": pass, "g/known": pass}, kernel},
		"stale known":         {same, conformance.Results{"g/a": pass, "g/b": skip, "g/known": pass}},
	} {
		if p := compareResults(c.fake, c.kernel, known); len(p) != 1 {
			t.Errorf("%s: %d problems %v, want 1", what, len(p), p)
		}
	}
}

// sortedIDs returns the keys of m in order.
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
