//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-luo/luo/examples/internal/cli"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/hold"
)

// main runs handoff with the command line and exits with its status. A copy
// started by hold.Detach becomes the session holder instead.
func main() {
	hold.Main(os.Args[1:])
	os.Exit(program.ExitCode(run(os.Args[1:], os.Stdout), os.Stderr))
}

// program is handoff's name and help.
var program = cli.Program{Name: "handoff", Usage: usageText}

const usageText = `Usage:
  handoff                                     the whole story on an in-process fake kernel
  handoff -image FILE -stage 1|2              each stage its own process, on a fake kernel
  handoff -device /dev/liveupdate -stage 1|2  a real kernel (root; kexec between the stages)

handoff preserves a counter (41) and a message in a memfd across a live
update with LUO, then gets them back and prints the counter plus one.

On a real kernel, stage 1 leaves a detached copy of handoff holding the
session until the kexec; it prints that copy's pid. Then load and run the
kexec (kexec -l KERNEL --reuse-cmdline, kexec -e; the next kernel needs
liveupdate=on too) and run stage 2 in the next kernel.

Flags:
`

// parse parses args. For -h it prints the help to stdout and returns
// flag.ErrHelp.
func parse(args []string, stdout io.Writer) (cli.Stages, error) {
	var o cli.Stages
	fs := program.FlagSet()
	o.Define(fs)
	if err := program.Parse(fs, args, stdout); err != nil {
		return o, err
	}
	return o, o.Check()
}

// run runs handoff with the command-line arguments args, narrating on
// stdout. The error says what failed and what to do.
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
		return imageStage1(o.Image, stdout)
	case o.Image != "":
		return imageStage2(o.Image, stdout)
	case o.Device != "" && o.Stage == 1:
		return deviceStage1(o.Device, stdout)
	case o.Device != "":
		return deviceStage2(o.Device, stdout)
	}
	return inProcess(stdout)
}

// inProcess runs the whole story on a fake kernel in this process: stage 1,
// the live update, stage 2. The fake writes its image to a temporary file,
// only to show its size.
func inProcess(out io.Writer) error {
	dir, err := os.MkdirTemp("", "handoff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	image := filepath.Join(dir, "image")
	k, err := fake.New(fake.WithImageFile(image))
	if err != nil {
		return fmt.Errorf("start the fake kernel: %w", err)
	}
	defer k.Close()
	fmt.Fprintln(out, "handoff: a live update on an in-process fake kernel (handoff -h shows the other modes)")

	dev, err := k.Open()
	if err != nil {
		return err
	}
	s, err := stage1(dev, initial, out)
	dev.Close() // sessions outlive the device fd
	if err != nil {
		return err
	}
	defer s.Close()
	for _, si := range k.State().Outgoing {
		for _, fi := range si.Files {
			fmt.Fprintf(out, "fake kernel: outgoing session %q holds token %d (%s)\n", si.Name, fi.Token, fi.Compatible)
		}
	}

	if err := k.Kexec(); err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	s.Close() // the old kernel's fd: a real agent's process is gone by now
	fi, err := os.Stat(image)
	if err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	fmt.Fprintf(out, "kexec: the kernel froze the session into a KHO image of %d bytes and booted the next kernel from it\n", fi.Size())

	dev, err = k.Open()
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, err := stage2(dev, initial, out); err != nil {
		return err
	}
	st := k.State()
	fmt.Fprintf(out, "fake kernel: %d incoming sessions left after %d live update(s)\n", len(st.Incoming), st.LiveupdateNum)
	fmt.Fprintln(out, "OK: the state survived the live update")
	return nil
}

// imageStage1 is stage 1 as its own process on a fake kernel: the fake's
// kexec writes the image to path for stage 2.
func imageStage1(path string, out io.Writer) error {
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
	s, err := stage1(dev, initial, out)
	dev.Close()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := k.Kexec(); err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	fmt.Fprintf(out, "kexec: wrote the image to %s (%d bytes)\n", path, fi.Size())
	fmt.Fprintf(out, "next: handoff -image %s -stage 2\n", path)
	return nil
}

// imageStage2 is stage 2 as its own process: a fake kernel boots from the
// image stage 1 wrote to path.
func imageStage2(path string, out io.Writer) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no image to boot from: %w; run handoff -image %s -stage 1 first", err, path)
	}
	k, err := fake.New(fake.WithImageFile(path))
	if err != nil {
		return fmt.Errorf("boot a fake kernel from %s: %w", path, err)
	}
	defer k.Close()
	fmt.Fprintf(out, "fake kernel: booted from %s\n", path)
	dev, err := k.Open()
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, err := stage2(dev, initial, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK: the state survived the live update")
	return nil
}

// deviceStage1 is stage 1 on a real kernel: the session goes to a detached
// holder that keeps it open until the kexec.
func deviceStage1(path string, out io.Writer) error {
	dev, err := liveupdate.Open(path)
	if err != nil {
		return err
	}
	s, err := stage1(dev, initial, out)
	dev.Close() // let the next kernel's agent, or anyone, open it
	if err != nil {
		return err
	}
	defer s.Close()
	h, err := hold.Detach([]*liveupdate.Session{s})
	if err != nil {
		return fmt.Errorf("stage 1: %w; the session is dropped as this process exits", err)
	}
	fmt.Fprintf(out, "holder: pid %d holds session %q until the kexec (kill %d drops it)\n", h.Pid(), sessionName, h.Pid())
	fmt.Fprintf(out, "now kexec, then run in the next kernel: handoff -device %s -stage 2\n", path)
	return nil
}

// deviceStage2 is stage 2 on a real kernel, after the kexec.
func deviceStage2(path string, out io.Writer) error {
	dev, err := liveupdate.Open(path)
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, err := stage2(dev, initial, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK: the state survived the live update")
	return nil
}
