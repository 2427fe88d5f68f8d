//go:build linux

package main

import (
	"strconv"

	"github.com/go-luo/luo/liveupdate/conformance"
	"time"
)

// A chain is one run of the VM: boot 0 starts from QEMU, and each later
// boot is a real kexec (kexec_file_load, then reboot) from the one before
// it, carrying the sessions its steps left open.
type chain struct {
	name  string
	boots []bootPlan
	// timeout bounds the whole chain in QEMU.
	timeout time.Duration
}

// A bootPlan is what runs on one kernel of a chain.
type bootPlan struct {
	steps []step
	// panics, when not empty, says that this kernel does not come up: it
	// panics at boot, printing these lines on the console (a kernel bug
	// the chain pins). Its steps are not run; the result named
	// panicsResult passes when the console shows every line and the boot
	// never came up, and fails when the kernel booted after all (the bug
	// is fixed: the fake's model of it must change).
	panics       []string
	panicsResult string
}

// stepKind says how a step runs and how its outcome becomes results.
type stepKind int

const (
	// goTest runs a Go test binary with -test.v and reports each subtest
	// from its "--- PASS/FAIL/SKIP" lines.
	goTest stepKind = iota
	// kselftest runs a kernel selftest and reports each "ok"/"not ok"
	// line of its TAP output, or, if it has none, its exit status.
	kselftest
	// program runs a command and passes when it exits 0.
	program
	// start starts a command in the background and passes when it is
	// still running once its ready path exists.
	start
	// stop sends SIGTERM to the command a start step started and passes
	// when it exits 0.
	stop
	// inProcess runs a function of the guest itself (luovm as PID 1), so
	// that the fds it opens stay open until the kexec.
	inProcess
	// inProcessResults is inProcess for a function that reports results
	// of its own (report), as many as it has.
	inProcessResults
)

// A step is one thing a boot runs.
type step struct {
	kind stepKind
	// result names the step's result, or the prefix of its results
	// ("conformance" gives "conformance/preserve/bad_fd_EBADF").
	result string
	// path is the program, relative to the guest's /luovm; args and env
	// are its arguments and extra environment ("KEY=VALUE").
	path string
	args []string
	env  []string
	// ready, for a start step, is a path that exists once the command
	// is ready to serve.
	ready string
	// fn is the function of an inProcess step.
	fn func() error
	// fnr is the function of an inProcessResults step.
	fnr func(report func(status, name, detail string))
	// optional marks a step whose program may be missing from the
	// image (the kernel's own selftests when they could not be built):
	// it is then reported as a failure that says so, not run.
	optional bool
}

// Guest paths. Everything luovm puts in the image is below guestDir, apart
// from /init; guestHold is the socket where the conformance suite hands
// over the sessions a case keeps for the next boot.
const (
	guestDir    = "/luovm"
	guestKernel = guestDir + "/bzImage"
	guestHold   = "/run/luovm-hold.sock"
	guestDaemon = "/run/luovm-daemon.sock"
)

// conformanceStep returns the step that runs boot n of the conformance
// suite from the liveupdate package's test binary.
func conformanceStep(chainName string, n int) step {
	return step{
		kind:   goTest,
		result: "conformance",
		path:   "bin/liveupdate.test",
		args:   []string{"-test.run", "^TestKernelConformance$", "-test.v", "-test.count=1", "-test.timeout=15m"},
		env: []string{
			conformance.BootEnv + "=" + strconv.Itoa(n),
			conformance.RunEnv + "=" + chainName,
			conformance.HoldEnv + "=" + guestHold,
		},
	}
}

// kselftests are the kernel's two-stage selftest programs.
var kselftests = []string{"luo_kexec_simple", "luo_multi_session", "luo_stress_sessions", "luo_stress_files"}

// plan returns every chain luovm runs.
func plan() []chain {
	// suite: the kernel's own single-boot selftests, the conformance
	// suite across its boots, and every example's -device mode.
	suite := chain{name: "suite", timeout: 20 * time.Minute}
	// A full split run of the suite takes as many boots as the most
	// stages any case has.
	for n := range max(conformance.SplitBoots(), 2) {
		var b bootPlan
		if n == 0 {
			b.steps = append(b.steps,
				step{kind: program, result: "luoctl/check", path: "bin/luoctl", args: []string{"check"}},
				step{kind: kselftest, result: "kselftest/liveupdate", path: "kselftest/liveupdate", optional: true})
		}
		b.steps = append(b.steps, conformanceStep(suite.name, n))
		switch n {
		case 0, 1:
			stage := strconv.Itoa(n + 1)
			b.steps = append(b.steps,
				step{kind: program, result: "examples/handoff/stage" + stage, path: "bin/handoff", args: []string{"-device", "/dev/liveupdate", "-stage", stage}},
				step{kind: program, result: "examples/kexec-selftests/stage" + stage, path: "bin/kexec-selftests", args: []string{"-test", "all", "-device", "/dev/liveupdate", "-stage", stage}},
				step{kind: start, result: "examples/daemon/start" + stage, path: "bin/daemon", args: []string{"-device", "/dev/liveupdate", "-socket", guestDaemon}, ready: guestDaemon},
				step{kind: program, result: "examples/daemon/client" + stage, path: "bin/daemon", args: []string{"-client", guestDaemon}},
			)
			if n == 1 {
				b.steps = append(b.steps, step{kind: stop, result: "examples/daemon/stop", path: "bin/daemon"})
			}
		}
		suite.boots = append(suite.boots, b)
	}

	// The kernel's two-stage selftests, exactly as do_kexec.sh runs
	// them: stage 1 of each (each leaves a daemon holding its sessions),
	// a kexec, stage 2 of each. Their session names are the ones
	// examples/kexec-selftests uses, so they get a chain of their own.
	ks := chain{name: "kselftest-kexec", timeout: 10 * time.Minute, boots: make([]bootPlan, 2)}
	for i := range ks.boots {
		stage := strconv.Itoa(i + 1)
		for _, p := range kselftests {
			ks.boots[i].steps = append(ks.boots[i].steps, step{
				kind: kselftest, result: "kselftest/" + p + "/stage" + stage,
				path: "kselftest/" + p, args: []string{"--stage", stage}, optional: true,
			})
		}
	}

	return []chain{suite, ks, dupCreateChain(false), dupCreateChain(true), diffChain()}
}

// dupCreateChain pins the kernel bug of Linux 7.2.13 in which a duplicate
// CREATE_SESSION with a full block of sessions (51) leaves an empty block
// in the session block set, and the next kernel panics at boot reading it.
// With repair, a session is closed after the duplicate create, which
// shrinks the set again: the next kernel boots and has the other 50.
func dupCreateChain(repair bool) chain {
	c := chain{name: "bug-dup-create", timeout: 5 * time.Minute}
	result := "kernel-bug/dup_create_at_full_block_panics_next_boot"
	if repair {
		c.name += "-repaired"
		result = "kernel-bug/dup_create_then_close_boots"
	}
	c.boots = []bootPlan{
		{steps: []step{{kind: inProcess, result: result + "/before", fn: func() error { return dupCreateBefore(repair) }}}},
		{},
	}
	if repair {
		c.boots[1].steps = []step{{kind: inProcess, result: result + "/after", fn: dupCreateAfter}}
	} else {
		c.boots[1].panics = []string{"luo: Block contains invalid entry count: 0", "Kernel panic - not syncing: The incoming tree failed to initialize properly"}
		c.boots[1].panicsResult = result
	}
	return c
}

// bootName names, in results, boot n of chain c itself: its failure to
// come up or to finish.
func bootName(c string, n int) string { return "vm/" + c + "/boot" + strconv.Itoa(n) }
