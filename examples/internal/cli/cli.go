// Package cli is the command line the examples share: -h, usage errors
// and exit statuses, and the -image, -device and -stage flags of an agent
// whose two stages run in one process on a fake kernel, as two processes
// on a fake kernel, or on a real kernel.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/go-luo/luo/liveupdate"
)

// UsageError is a mistake on the command line: exit status 2, with a
// pointer to -h.
type UsageError struct{ Msg string }

// Error returns the message.
func (e UsageError) Error() string { return e.Msg }

// Program is an example's name and the help text printed before its
// flags' defaults.
type Program struct {
	Name  string
	Usage string
}

// FlagSet returns an empty flag set for p that reports errors by return
// only (its output is discarded; Parse prints -h).
func (p Program) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// Parse parses args with fs. For -h it prints p.Usage and the flags'
// defaults to stdout and returns flag.ErrHelp; a flag fs does not define,
// a bad value or an argument after the flags is a UsageError.
func (p Program) Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, p.Usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return UsageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// ExitCode prints err, if any, to stderr, prefixed with p's name, and
// returns the exit status for it: 0 for nil, 2 for a UsageError (which
// also gets a pointer to -h), 1 for the rest.
func (p Program) ExitCode(err error, stderr io.Writer) int {
	var ue UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s -h' for usage.\n", p.Name, err, p.Name)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	return 1
}

// Stages are the flags that choose where a two-stage agent runs: with
// none, both stages in this process on a fake kernel; with Image and
// Stage, one stage on a fake kernel that hands over through that file;
// with Device and Stage, one stage on the real kernel's LUO device.
type Stages struct {
	Image  string // -image FILE
	Device string // -device PATH
	Stage  int    // -stage N, 1 or 2 with Image or Device, else 0
}

// Define defines -image, -device and -stage in fs, setting s.
func (s *Stages) Define(fs *flag.FlagSet) {
	fs.StringVar(&s.Image, "image", "", "run one stage on a fake kernel that hands over through `FILE` (stage 1 writes it, stage 2 boots from it)")
	fs.StringVar(&s.Device, "device", "", "run one stage on the real kernel's LUO device at `PATH`, usually "+liveupdate.DefaultPath)
	fs.IntVar(&s.Stage, "stage", 0, "the stage to run, `N` = 1 (before the kexec) or 2 (after it), with -image or -device")
}

// Check returns a UsageError for flags that do not go together: -image
// with -device, -stage without either, either without -stage 1 or 2.
func (s Stages) Check() error {
	switch {
	case s.Image != "" && s.Device != "":
		return UsageError{"-image and -device exclude each other: -image is a fake kernel, -device a real one"}
	case s.Image == "" && s.Device == "" && s.Stage != 0:
		return UsageError{"-stage needs -image FILE (a fake kernel) or -device PATH (a real one); without them both stages run in this process"}
	case (s.Image != "" || s.Device != "") && s.Stage != 1 && s.Stage != 2:
		return UsageError{"-image and -device need -stage 1 or -stage 2"}
	}
	return nil
}
