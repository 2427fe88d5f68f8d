//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("luoemu: ")
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "kexec":
			os.Exit(kexecMain(args[1:]))
		case "check":
			os.Exit(checkMain(args[1:]))
		case probeCmd:
			os.Exit(probeMain())
		}
	}
	os.Exit(runMain(args))
}

const usage = `usage:
  luoemu [flags] [--] PROGRAM [ARGS...]   run PROGRAM with a fake kernel's LUO
  luoemu kexec [-control SOCKET]          perform the live update of a running luoemu
  luoemu check                            tell whether this machine can run luoemu

PROGRAM and everything it starts (the program tree) see the fake kernel as
their LUO: opening the device gives a fake device fd, LUO ioctls on fake fds
are the fake's, and reboot(LINUX_REBOOT_CMD_KEXEC) is the live update. All
other system calls go to this machine's kernel. The live update, asked for
by reboot(2) in the tree or by "luoemu kexec", freezes the sessions into
the -image file and ends the tree; "luoemu -image FILE -- PROGRAM" then runs
the next boot, which finds them as incoming sessions. Without a live update,
luoemu runs until the whole tree has exited and exits as PROGRAM did.

flags:
`

func runMain(args []string) int {
	fs := flag.NewFlagSet("luoemu", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	device := fs.String("device", "/dev/liveupdate", "the device `path` the program tree opens")
	image := fs.String("image", "", "the `file` a live update writes and the next run boots from (a missing or empty file: a fresh boot)")
	gen := defaultGen()
	fs.TextVar(&gen, "generation", fake.DefaultGeneration, "the kernel release the fake models: linux-7.2 or linux-6.19")
	control := fs.String("control", "", "the control `socket` for \"luoemu kexec\" (default: one in a private temporary directory, named in $"+ControlEnv+")")
	freeze := fs.Bool("freeze", true, "refuse with EPERM the calls that change a preserved memfd's size, as the kernel does (serves every write(2) and its kin)")
	verbose := fs.Bool("v", false, "log every served call")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	code, err := run(runConfig{
		device: *device, image: *image, gen: gen, control: *control,
		freeze: *freeze, verbose: *verbose, argv: fs.Args(),
	})
	if err != nil {
		log.Print(err)
		return 1
	}
	return code
}

type runConfig struct {
	device, image, control string
	gen                    fake.Generation
	freeze, verbose        bool
	argv                   []string
}

// run runs the program tree of cfg.argv under the emulator and returns
// luoemu's exit code.
func run(cfg runConfig) (int, error) {
	if err := supported(); err != nil {
		return 0, err
	}
	if err := becomeSubreaper(); err != nil {
		return 0, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	devPath, err := filepath.Abs(cfg.device)
	if err != nil {
		return 0, err
	}
	path, err := exec.LookPath(cfg.argv[0])
	if err != nil {
		return 0, err
	}
	opts := []fake.Option{fake.WithGeneration(cfg.gen)}
	booted := false
	if cfg.image != "" {
		opts = append(opts, fake.WithImageFile(cfg.image))
		if st, err := os.Stat(cfg.image); err == nil && st.Size() > 0 {
			booted = true
		}
	}
	k, err := fake.New(opts...)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	if booted {
		// The image is this boot's now: a run that ends without a live
		// update leaves none behind, as memory does not survive a
		// power cycle.
		if err := os.Truncate(cfg.image, 0); err != nil {
			return 0, err
		}
	}
	dir, err := os.MkdirTemp("", "luoemu-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ctlPath := cfg.control
	if ctlPath == "" {
		ctlPath = filepath.Join(dir, "control")
	}
	ctl, err := listenControl(ctlPath)
	if err != nil {
		return 0, fmt.Errorf("control socket: %w", err)
	}
	defer ctl.Close()

	e := &emulator{k: k, devPath: devPath, killable: kernelAtLeast(5, 19), image: cfg.image, freeze: cfg.freeze, endTree: killTree}
	if cfg.verbose {
		e.log = log.New(os.Stderr, "luoemu: ", 0)
	}
	// Signals that end a program are passed to it; luoemu ends when its
	// tree does.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)

	attr := &os.ProcAttr{
		Env:   append(os.Environ(), ControlEnv+"="+ctlPath),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	}
	prog := filterConfig{freeze: cfg.freeze}.program()
	p, l, err := startFiltered(prog, path, cfg.argv, attr)
	if err != nil {
		return 0, err
	}
	e.l = l
	root := p.Pid
	p.Release()
	go func() {
		for s := range sigs {
			unix.Kill(root, s.(unix.Signal))
		}
	}()
	served := make(chan error, 1)
	go func() { served <- e.serve() }()
	go e.serveControl(ctl)

	ws := waitTree(root)
	if err := <-served; err != nil {
		log.Print(err)
	}
	unix.Close(int(l))
	e.kexecMu.Lock()
	e.exiting = true
	e.kexecMu.Unlock()
	e.replying.Wait()
	if e.done() {
		fmt.Fprintf(os.Stderr, "luoemu: live update: the sessions are in %s; run luoemu -image %s to boot the next kernel\n", cfg.image, cfg.image)
		return 0, nil
	}
	return exitCode(ws), nil
}

// done tells whether the live update has happened.
func (e *emulator) done() bool {
	e.kexecMu.Lock()
	defer e.kexecMu.Unlock()
	return e.kexeced
}

func kexecMain(args []string) int {
	fs := flag.NewFlagSet("luoemu kexec", flag.ContinueOnError)
	control := fs.String("control", os.Getenv(ControlEnv), "the control `socket` of the luoemu to update (default $"+ControlEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *control == "" {
		log.Print("kexec: no control socket: run it in a luoemu tree, or give -control")
		return 2
	}
	if err := requestKexec(*control); err != nil {
		log.Printf("kexec: %v", err)
		return 1
	}
	return 0
}

func defaultGen() fake.Generation { return fake.DefaultGeneration }
