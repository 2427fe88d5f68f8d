//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-luo/luo/examples/internal/cli"
	"github.com/go-luo/luo/internal/kexectests"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/hold"
)

// main runs kexec-selftests with the command line and exits with its
// status. A copy started by hold.Detach becomes the session holder instead.
func main() {
	hold.Main(os.Args[1:])
	os.Exit(program.ExitCode(run(os.Args[1:], os.Stdout), os.Stderr))
}

// program is kexec-selftests' name and help.
var program = cli.Program{Name: "kexec-selftests", Usage: usageText}

const usageText = `Usage:
  kexec-selftests [-test NAME]                           both stages on an in-process fake kernel
  kexec-selftests [-test NAME] -image FILE -stage 1|2    each stage its own process, on a fake kernel
  kexec-selftests [-test NAME] -device PATH -stage 1|2   a real kernel (root; kexec between the stages)

Runs the kernel's two-stage LUO selftests (tools/testing/selftests/liveupdate):
simple (luo_kexec_simple), multi-session (luo_multi_session), stress-sessions
(luo_stress_sessions) and stress-files (luo_stress_files).

On a real kernel, stage 1 leaves a detached copy of this program holding
the sessions until the kexec and prints its pid; then kexec into the kernel
under test (kexec -l KERNEL --reuse-cmdline, kexec -e) and run stage 2 there.

Flags:
`

// options are the parsed command line.
type options struct {
	name  string // -test
	tests []kexectests.Test
	cli.Stages
}

// testNames lists the names -test takes.
func testNames() string {
	var names []string
	for _, t := range kexectests.All() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ") + " or all"
}

// parse parses args. For -h it prints the help to stdout and returns
// flag.ErrHelp.
func parse(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := program.FlagSet()
	fs.StringVar(&o.name, "test", "all", "the test to run, `NAME`: "+testNames())
	o.Define(fs)
	if err := program.Parse(fs, args, stdout); err != nil {
		return o, err
	}
	if err := o.Check(); err != nil {
		return o, err
	}
	if name := o.name; name == "all" {
		o.tests = kexectests.All()
	} else if t, ok := kexectests.ByName(name); ok {
		o.tests = []kexectests.Test{t}
	} else {
		return o, cli.UsageError{Msg: fmt.Sprintf("unknown test %q: -test takes %s", name, testNames())}
	}
	return o, nil
}

// run runs kexec-selftests with the command-line arguments args, reporting
// on stdout. It fails when a test failed.
func run(args []string, stdout io.Writer) error {
	o, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case o.Image != "" && o.Stage == 1:
		return imageStage1(o.tests, o.name, o.Image, stdout)
	case o.Image != "":
		return imageStage2(o.tests, o.Image, stdout)
	case o.Device != "" && o.Stage == 1:
		return deviceStage1(o.tests, o.name, o.Device, stdout)
	case o.Device != "":
		return deviceStage2(o.tests, o.Device, stdout)
	}
	return inProcess(o.tests, stdout)
}

// tally counts results.
type tally struct{ passed, failed, skipped int }

// add adds u to t.
func (t *tally) add(u tally) {
	t.passed += u.passed
	t.failed += u.failed
	t.skipped += u.skipped
}

// label names a test as "simple (luo_kexec_simple)".
func label(t kexectests.Test) string { return t.Name + " (" + t.Program + ")" }

// runStage1 runs stage 1 of every test on dev, reporting each. It returns
// the sessions to keep open until the kexec, the tests that are ready for
// stage 2, and the failures and skips.
func runStage1(dev *liveupdate.Device, tests []kexectests.Test, out io.Writer) (keep []*liveupdate.Session, ready []kexectests.Test, n tally) {
	for _, t := range tests {
		start := time.Now()
		ss, err := t.Stage1(dev)
		switch {
		case errors.Is(err, kexectests.ErrSkip):
			n.skipped++
			fmt.Fprintf(out, "SKIPPED %s: %v\n", label(t), err)
		case errors.Is(err, kexectests.ErrWrongStage):
			n.failed++
			fmt.Fprintf(out, "FAILED %s: %v (the previous kernel handed over this test's state, so its stage 2 was due; stage 1 has now finished that state)\n", label(t), err)
		case err != nil:
			n.failed++
			fmt.Fprintf(out, "FAILED %s: %v\n", label(t), err)
		default:
			keep = append(keep, ss...)
			ready = append(ready, t)
			fmt.Fprintf(out, "stage 1: %s: ok, %d sessions to keep open until the kexec (%v)\n", label(t), len(ss), since(start))
		}
	}
	return keep, ready, n
}

// runStage2 runs stage 2 of every test on dev, reporting each.
func runStage2(dev *liveupdate.Device, tests []kexectests.Test, out io.Writer) (n tally) {
	for _, t := range tests {
		start := time.Now()
		passed, err := t.Stage2(dev, nil)
		switch {
		case errors.Is(err, kexectests.ErrWrongStage):
			n.failed++
			fmt.Fprintf(out, "FAILED %s: %v (stage 1 did not run before the live update, failed, or its sessions were not kept open)\n", label(t), err)
		case err != nil:
			n.failed++
			fmt.Fprintf(out, "FAILED %s: %v\n", label(t), err)
		default:
			n.passed++
			fmt.Fprintf(out, "--- %s ---\n", passed)
			fmt.Fprintf(out, "PASSED %s (%v)\n", label(t), since(start))
		}
	}
	return n
}

// since is the time since start, rounded for a report.
func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }

// closeAll closes the sessions.
func closeAll(ss []*liveupdate.Session) {
	for _, s := range ss {
		s.Close()
	}
}

// summary prints the tally and returns an error when a test failed.
func summary(n tally, total int, where string, out io.Writer) error {
	fmt.Fprintf(out, "kexec-selftests: %d passed, %d failed, %d skipped (%s)\n", n.passed, n.failed, n.skipped, where)
	if n.failed > 0 {
		return fmt.Errorf("%d of %d tests failed", n.failed, total)
	}
	return nil
}

// inProcess runs both stages of the tests on a fake kernel in this
// process, with one live update between them.
func inProcess(tests []kexectests.Test, out io.Writer) error {
	k, err := fake.New()
	if err != nil {
		return fmt.Errorf("start the fake kernel: %w", err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		return err
	}
	keep, ready, n := runStage1(dev, tests, out)
	dev.Close()
	defer closeAll(keep)

	start := time.Now()
	if err := k.Kexec(); err != nil {
		for _, t := range ready {
			fmt.Fprintf(out, "FAILED %s: kexec: %v\n", label(t), err)
		}
		n.failed += len(ready)
		return summary(n, len(tests), "fake kernel", out)
	}
	fmt.Fprintf(out, "kexec: the fake kernel handed %d sessions to the next kernel (%v)\n", len(keep), since(start))
	closeAll(keep) // the old kernel's fds
	keep = nil

	dev, err = k.Open()
	if err != nil {
		return err
	}
	defer dev.Close()
	n.add(runStage2(dev, ready, out))
	if err := k.CheckInvariants(); err != nil {
		n.failed++
		fmt.Fprintf(out, "FAILED fake kernel invariants: %v\n", err)
	}
	if left := k.State().Incoming; len(left) != 0 {
		n.failed++
		fmt.Fprintf(out, "FAILED %d incoming sessions left unfinished, the first %q\n", len(left), left[0].Name)
	}
	return summary(n, len(tests), "fake kernel", out)
}

// imageStage1 runs stage 1 as its own process on a fake kernel, whose
// live update writes the image to path. name is the -test that selected
// tests, for the next command.
func imageStage1(tests []kexectests.Test, name, path string, out io.Writer) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: it holds the image of an earlier stage 1; run -image %s -stage 2, or remove it to start over", path, path)
	}
	k, err := fake.New(fake.WithImageFile(path))
	if err != nil {
		return fmt.Errorf("start the fake kernel: %w", err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		return err
	}
	keep, ready, n := runStage1(dev, tests, out)
	dev.Close()
	defer closeAll(keep)
	if err := k.Kexec(); err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	fmt.Fprintf(out, "kexec: wrote the image to %s; next: kexec-selftests -test %s -image %s -stage 2\n", path, name, path)
	return stage1Summary(n, len(ready), len(tests), out)
}

// stage1Summary reports a stage 1 on its own and returns an error when a
// test failed.
func stage1Summary(n tally, ready, total int, out io.Writer) error {
	fmt.Fprintf(out, "kexec-selftests: stage 1: %d ready for stage 2, %d failed, %d skipped\n", ready, n.failed, n.skipped)
	if n.failed > 0 {
		return fmt.Errorf("%d of %d tests failed in stage 1", n.failed, total)
	}
	return nil
}

// imageStage2 runs stage 2 as its own process on a fake kernel booted from
// the image at path.
func imageStage2(tests []kexectests.Test, path string, out io.Writer) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no image to boot from: %w; run kexec-selftests -image %s -stage 1 first", err, path)
	}
	k, err := fake.New(fake.WithImageFile(path))
	if err != nil {
		return fmt.Errorf("boot a fake kernel from %s: %w", path, err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		return err
	}
	defer dev.Close()
	return summary(runStage2(dev, tests, out), len(tests), "fake kernel booted from "+path, out)
}

// deviceStage1 runs stage 1 on a real kernel and leaves the sessions with a
// detached holder until the kexec. name is the -test that selected tests,
// for the next command.
func deviceStage1(tests []kexectests.Test, name, path string, out io.Writer) error {
	dev, err := liveupdate.Open(path)
	if err != nil {
		return err
	}
	keep, ready, n := runStage1(dev, tests, out)
	dev.Close() // as the C tests do before they fork the holder
	defer closeAll(keep)
	if len(keep) > 0 {
		h, err := hold.Detach(keep)
		if err != nil {
			return fmt.Errorf("%w; the sessions are dropped as this process exits", err)
		}
		fmt.Fprintf(out, "holder: pid %d holds %d sessions until the kexec (kill %d drops them)\n", h.Pid(), len(keep), h.Pid())
		fmt.Fprintf(out, "now kexec, then run in the next kernel: kexec-selftests -test %s -device %s -stage 2\n", name, path)
	}
	return stage1Summary(n, len(ready), len(tests), out)
}

// deviceStage2 runs stage 2 on a real kernel, after the kexec.
func deviceStage2(tests []kexectests.Test, path string, out io.Writer) error {
	dev, err := liveupdate.Open(path)
	if err != nil {
		return err
	}
	defer dev.Close()
	return summary(runStage2(dev, tests, out), len(tests), path, out)
}
