//go:build linux

package luoprog_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/go-luo/luo/internal/luoprog"
	"github.com/go-luo/luo/internal/testexec"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
)

// fakeTarget is a fresh fake kernel, reached in process (k.Open) or, with
// listen, through its Listen socket as another process would.
func fakeTarget(t testing.TB, listen bool) (luoprog.Target, *fake.Kernel) {
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	tgt := luoprog.Target{Open: k.Open, Kexec: k.Kexec, Prefix: "p-", Frozen: frozenOf(k)}
	if listen {
		path := filepath.Join(t.TempDir(), "dev")
		if _, err := k.Listen(path); err != nil {
			t.Fatal(err)
		}
		tgt.Open = func() (*liveupdate.Device, error) { return liveupdate.Open(path) }
	}
	return tgt, k
}

// frozenOf is k's Frozen for a Target.
func frozenOf(k *fake.Kernel) func(int) bool {
	return func(fd int) bool {
		ok, err := k.Frozen(fd)
		return ok && err == nil
	}
}

func TestEncodeDecode(t *testing.T) {
	for seed := range uint64(200) {
		p := luoprog.Generate(seed, 40)
		if got := luoprog.Decode(p.Encode()); !reflect.DeepEqual(got, p) {
			t.Fatalf("seed %d: Decode(Encode(p)) differs:\n%v\nwant\n%v", seed, got, p)
		}
	}
}

// TestGeneratedOnFake runs generated programs on the fake, twice each, in
// process and through the fake's socket, and requires the same trace of
// both and the fake's invariants after each.
func TestGeneratedOnFake(t *testing.T) {
	if testexec.UnderQEMUUser() {
		t.Skip("under qemu-user the fake's witness mapping of a preserved memfd is sometimes dropped, so a seal's EBUSY flips between runs")
	}
	n := 200
	if testing.Short() {
		n = 20
	}
	deep := 0
	for seed := range uint64(n) {
		p := luoprog.Generate(seed, 40)
		a, ka := fakeTarget(t, false)
		b, _ := fakeTarget(t, true)
		ta, tb := luoprog.Run(a, p), luoprog.Run(b, p)
		if i, x, y, ok := ta.Diff(tb); ok {
			t.Fatalf("seed %d: step %d differs in process and through the socket:\n  %s\n  %s\nprogram:\n%v", seed, i, x, y, p)
		}
		if err := ka.CheckInvariants(); err != nil {
			t.Fatalf("seed %d: %v\nprogram:\n%v\ntrace:\n%v", seed, err, p, ta)
		}
		for _, l := range ta {
			if len(l) > 0 && contains(l, "retrieve-fd") && contains(l, "-> ok size") {
				deep++
				break
			}
		}
	}
	// The generator must reach retrieved files in a good share of its
	// programs, or the runs test little.
	if deep < n/10 {
		t.Errorf("only %d of %d programs retrieved a file after a live update", deep, n)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// FuzzProgram runs a program of the fuzzer's bytes in process and
// through the socket: the traces must agree, and the fake's invariants
// hold.
func FuzzProgram(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(luoprog.Generate(seed, 30).Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := luoprog.Decode(b)
		a, ka := fakeTarget(t, false)
		c, _ := fakeTarget(t, true)
		ta, tc := luoprog.Run(a, p), luoprog.Run(c, p)
		if i, x, y, ok := ta.Diff(tc); ok {
			t.Fatalf("step %d differs in process and through the socket:\n  %s\n  %s\nprogram:\n%v", i, x, y, p)
		}
		if err := ka.CheckInvariants(); err != nil {
			t.Fatalf("%v\nprogram:\n%v", err, p)
		}
	})
}

// TestShrink shrinks a generated program to the shortest that still
// retrieves a file after a live update: open, create, memfd, preserve,
// kexec, open, retrieve, retrieve-fd, and nothing else.
func TestShrink(t *testing.T) {
	retrieves := func(p luoprog.Program) bool {
		tgt, _ := fakeTarget(t, false)
		for _, l := range luoprog.Run(tgt, p) {
			if contains(l, "retrieve-fd") && contains(l, "-> ok size") {
				return true
			}
		}
		return false
	}
	var p luoprog.Program
	for seed := uint64(0); ; seed++ {
		p = luoprog.Generate(seed, 60)
		if len(p) > 20 && retrieves(p) {
			break
		}
	}
	got := luoprog.Shrink(p, retrieves)
	want := []luoprog.Kind{luoprog.Open, luoprog.Create, luoprog.MemfdNew, luoprog.Preserve,
		luoprog.Kexec, luoprog.Open, luoprog.Retrieve, luoprog.RetrieveFD}
	var kinds []luoprog.Kind
	for _, o := range got {
		kinds = append(kinds, o.Kind)
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("Shrink of a %d-operation program gave\n%v\nwant the kinds %v", len(p), got, want)
	}
}

// TestSchedule runs a schedule on one fake, boot by boot as the VM lane
// runs it on the kernel, and requires every program's stage to trace as
// the program run alone does: the programs do not see each other.
func TestSchedule(t *testing.T) {
	if testexec.UnderQEMUUser() {
		t.Skip("under qemu-user the fake's witness mapping of a preserved memfd is sometimes dropped, so a seal's EBUSY flips between runs")
	}
	s := luoprog.NewSchedule(0, 64, 8, 40)
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	compared := 0
	for j := range s.Boots() {
		var keep []*liveupdate.Session
		for _, r := range s.Boot(j) {
			p := s.Program(r.Program)
			tgt := luoprog.Target{Open: k.Open, Prefix: luoprog.Prefix(r.Program), Frozen: frozenOf(k)}
			var tr luoprog.Trace
			if r.Last {
				tr = luoprog.RunStage(tgt, p, r.Stage)
			} else {
				var ss []*liveupdate.Session
				tr, ss = luoprog.RunStageKeeping(tgt, p, r.Stage)
				keep = append(keep, ss...)
			}
			alone, _ := fakeTarget(t, false)
			alone.Prefix = luoprog.Prefix(r.Program)
			want := luoprog.RunStages(alone, p)[r.Stage]
			if !r.Last {
				want = want[:len(want)-1] // the stage's kexec line
			}
			if i, a, b, ok := tr.Diff(want); ok {
				t.Fatalf("boot %d, program %d stage %d, step %d: scheduled %q, alone %q\nprogram:\n%v", j, r.Program, r.Stage, i, a, b, p)
			}
			compared++
		}
		if err := k.Kexec(); err != nil {
			t.Fatalf("boot %d: kexec: %v", j, err)
		}
		for _, x := range keep {
			x.Close()
		}
	}
	if compared < 64 {
		t.Errorf("compared %d stages", compared)
	}
}

// TestRunTellsGenerationsApart runs the same programs on the fake of
// Linux 7.2 and of Linux 6.19, which differ (GET_NAME, direction checks,
// FINISH's reserved field): the traces must differ for some, or a trace
// could not show a difference between a kernel and the fake either.
func TestRunTellsGenerationsApart(t *testing.T) {
	differ := 0
	for seed := range uint64(60) {
		p := luoprog.Generate(seed, 40)
		var traces [2]luoprog.Trace
		for i, g := range []fake.Generation{fake.Linux7_2, fake.Linux6_19} {
			k, err := fake.New(fake.WithGeneration(g))
			if err != nil {
				t.Fatal(err)
			}
			traces[i] = luoprog.Run(luoprog.Target{Open: k.Open, Kexec: k.Kexec, Prefix: "p-", Frozen: frozenOf(k)}, p)
			k.Close()
		}
		if _, _, _, ok := traces[0].Diff(traces[1]); ok {
			differ++
		}
	}
	if differ == 0 {
		t.Error("no program traced differently on Linux 7.2's fake and Linux 6.19's")
	}
	t.Logf("%d of 60 programs trace differently on the two generations", differ)
}

// TestScheduleReachesDeepStates counts, on the fake, what the VM lane's
// schedule exercises, and requires that a good share of its programs
// preserve a file and retrieve it after a live update.
func TestScheduleReachesDeepStates(t *testing.T) {
	s := luoprog.NewSchedule(0, 512, 16, 40)
	if testing.Short() {
		s.Seeds = s.Seeds[:64]
	}
	var retrieved, kexecs, raw int
	for i := range s.Seeds {
		p := s.Program(i)
		kexecs += p.Stages() - 1
		tgt, _ := fakeTarget(t, false)
		got := false
		for _, l := range luoprog.Run(tgt, p) {
			if !got && contains(l, "retrieve-fd") && contains(l, "-> ok size") {
				got = true
				retrieved++
			}
			if contains(l, " raw on ") {
				raw++
			}
		}
	}
	t.Logf("%d programs: %d retrieve a file after a live update; %d live updates, %d raw requests", len(s.Seeds), retrieved, kexecs, raw)
	if retrieved < len(s.Seeds)/4 {
		t.Errorf("only %d of %d programs retrieve a file after a live update", retrieved, len(s.Seeds))
	}
}

// TestRunnerRegressions keeps the two runner bugs the VM lane's first run
// found: a raw request with a short size field must show the memory
// after it, as the kernel reads it (EINVAL for size 0, not the EFAULT of a
// buffer that ends there), and a write a frozen memfd refuses traces as
// pwrite's -1.
func TestRunnerRegressions(t *testing.T) {
	raw := luoprog.Program{{Kind: luoprog.Open}, {Kind: luoprog.Raw, S: 255, M: 0, T: 0}}
	tgt, k := fakeTarget(t, false)
	if tr := luoprog.Run(tgt, raw); !contains(tr[1], "-> EINVAL") {
		t.Errorf("raw CREATE_SESSION of size 0: %q, want EINVAL as on Linux 7.2.13", tr[1])
	}
	frozen := luoprog.Program{
		{Kind: luoprog.Open}, {Kind: luoprog.Create, N: 0, S: 0},
		{Kind: luoprog.MemfdNew, M: 0, T: 3}, // 4096 bytes
		{Kind: luoprog.Preserve, S: 0, M: 0, T: 0},
		{Kind: luoprog.MemfdWrite, M: 0, N: 8, T: 3}, // 4096 bytes at 4096: past the end
	}
	tr := luoprog.Run(luoprog.Target{Open: k.Open, Kexec: k.Kexec, Prefix: "q-", Frozen: frozenOf(k)}, frozen)
	if !contains(tr[4], "-> -1 EPERM") {
		t.Errorf("extending write of a preserved memfd: %q, want -1 EPERM as on Linux 7.2.13", tr[4])
	}
}

// TestShrinkDifference shrinks a program that traces differently on
// Linux 7.2's fake and Linux 6.19's to the shortest that still does, as
// the VM lane shrinks a program that differs on the kernel.
func TestShrinkDifference(t *testing.T) {
	run := func(g fake.Generation, p luoprog.Program) luoprog.Trace {
		k, err := fake.New(fake.WithGeneration(g))
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		return luoprog.Run(luoprog.Target{Open: k.Open, Kexec: k.Kexec, Prefix: "p-", Frozen: frozenOf(k)}, p)
	}
	differs := func(p luoprog.Program) bool {
		_, _, _, ok := run(fake.Linux7_2, p).Diff(run(fake.Linux6_19, p))
		return ok
	}
	for seed := uint64(0); seed < 60; seed++ {
		p := luoprog.Generate(seed, 40)
		if !differs(p) {
			continue
		}
		got := luoprog.Shrink(p, differs)
		if !differs(got) || len(got) >= len(p) {
			t.Fatalf("seed %d: Shrink gave %d of %d operations:\n%v", seed, len(got), len(p), got)
		}
		// No single operation can go: the result is a local minimum.
		for i := range got {
			q := append(append(luoprog.Program{}, got[:i]...), got[i+1:]...)
			if differs(q) {
				t.Errorf("seed %d: without operation %d the program still differs:\n%v", seed, i, q)
			}
		}
		t.Logf("seed %d: %d operations shrunk to %d:\n%v", seed, len(p), len(got), got)
		return
	}
	t.Fatal("no program differs")
}

// TestSealPreservedMemfd keeps what the diff chain found on Linux 7.2.13
// (seeds 36 and 527): F_SEAL_WRITE, and F_SEAL_EXEC which implies it for
// an executable memfd, on a preserved memfd answer EBUSY on the kernel,
// as on the fake, whose witness mapping counts as writable. (A change
// that let the fake add them was wrong, and the kernel said so.)
func TestSealPreservedMemfd(t *testing.T) {
	if testexec.UnderQEMUUser() {
		t.Skip("under qemu-user the fake's witness mapping is sometimes dropped, and the seal then succeeds")
	}
	p := luoprog.Program{{Kind: luoprog.Open}, {Kind: luoprog.Create, N: 0, S: 0},
		{Kind: luoprog.MemfdNew, M: 0, T: 3, N: 1}, {Kind: luoprog.Preserve, S: 0, M: 0, T: 0},
		{Kind: luoprog.MemfdSeal, M: 0, N: 2}, {Kind: luoprog.MemfdSeal, M: 0, N: 5}}
	tgt, _ := fakeTarget(t, false)
	tr := luoprog.Run(tgt, p)
	for _, i := range []int{4, 5} {
		if !contains(tr[i], "-> EBUSY") {
			t.Errorf("%s, want EBUSY as on Linux 7.2.13", tr[i])
		}
	}
}
