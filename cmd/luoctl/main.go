// Command luoctl is an operator's tool for the Linux Live Update
// Orchestrator (LUO).
//
// Usage:
//
//	luoctl [-h] COMMAND [flags] [args]
//
// Commands:
//
//	check     tell whether this machine can do a live update, and what to fix
//	inspect   decode a KHO image file (as a fake kernel writes it) and list
//	          its sessions and files
//
// Run "luoctl COMMAND -h" for a command's flags. Exit status: 0 on success,
// 1 when the command failed (for check: a live update is not possible),
// 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const mainUsage = `Usage: luoctl [-h] COMMAND [flags] [args]

luoctl inspects a machine and the state it hands over for a Linux Live
Update (LUO: /dev/liveupdate, KHO).

Commands:
  check     tell whether this machine can do a live update, and what to fix
  inspect   decode a KHO image file and list its sessions and files

Run 'luoctl COMMAND -h' for the flags of a command.

Exit status: 0 success; 1 the command failed (check: a live update is not
possible here); 2 usage error.
`

// command is a subcommand: it parses its own args and writes to stdout;
// it returns a usageError for a bad invocation, errReported when it has
// already said why it failed, or another error for run to print.
type command struct {
	name string
	run  func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"check", runCheck},
	{"inspect", runInspect},
}

// run is the whole program: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return exitStatus(stderr, usagef("no command given: run 'luoctl check' or 'luoctl inspect IMAGE' (see 'luoctl -h')"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			// "luoctl help check" is "luoctl check -h".
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, mainUsage)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return exitStatus(stderr, c.run(args[1:], stdout, stderr))
		}
	}
	if len(args[0]) > 0 && args[0][0] == '-' {
		return exitStatus(stderr, usagef("flag %s before the command: luoctl takes only -h there; put a command's flags after it, as in 'luoctl check -json'", args[0]))
	}
	return exitStatus(stderr, usagef("unknown command %q: the commands are check and inspect (see 'luoctl -h')", args[0]))
}

// usageError is a bad invocation: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errReported is returned by a command that failed and has already written
// why (check's FAIL lines): exit status 1 without another message.
var errReported = errors.New("failure already reported")

// errHelp is returned when -h was given and the help printed: exit 0.
var errHelp = errors.New("help requested")

func exitStatus(stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errReported):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "luoctl: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "luoctl: %v\n", err)
		return 1
	}
}
