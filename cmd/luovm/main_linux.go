//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getpid() == 1 {
		guestMain()
	}
	if applet(filepath.Base(os.Args[0]), os.Args[1:]) {
		return
	}
	os.Exit(hostMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `Usage: luovm [flags]

Boots a Linux kernel with LUO in QEMU and runs, across real kexecs, the
kernel's own LUO selftests, the conformance suite, the kexec selftests and
every example's -device mode. Without -kernel it builds Linux from Debian's
linux-source-7.2 with the config fragment kept beside this command, and
caches the kernel. It ends with a line "vm: N passed, N failed, N skipped"
and exits 1 on any failure, or on a boot that never reports.

Flags:
`

// options are luovm's flags.
type options struct {
	kernel     string
	cache      string
	kselftests bool
	chains     string
	jobs       int
	out        string
	results    string
	want       string
	accel      string
	memory     string
	verbose    bool
	// selftestsDir asks only for the kernel's selftests: build (or find
	// in the cache) the source and the selftests, print their directory.
	selftestsDir bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	cache, _ := defaultCacheDir()
	fs := flag.NewFlagSet("luovm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.kernel, "kernel", "", "boot this x86_64 `bzImage` instead of building one")
	fs.StringVar(&o.cache, "cache", cache, "cache kernel sources and builds in `DIR`")
	fs.BoolVar(&o.kselftests, "kselftests", true, "build and run the kernel's own LUO selftests (needs the kernel source)")
	fs.StringVar(&o.chains, "chains", "", "run only these comma-separated `CHAINS` (default all: "+strings.Join(chainNames(), ", ")+")")
	fs.IntVar(&o.jobs, "j", min(2, runtime.NumCPU()), "run `N` VMs at once")
	fs.StringVar(&o.out, "out", "", "keep consoles and results in `DIR` (default a new temporary directory)")
	fs.StringVar(&o.results, "conformance-results", "", "write the conformance suite's results on the kernel to `FILE`")
	fs.StringVar(&o.want, "want-conformance", "", "fail unless the conformance suite's result of each case on the kernel is the one `FILE` lists (a file -conformance-results wrote)")
	fs.StringVar(&o.accel, "accel", "tcg", "QEMU `ACCEL`erator: tcg, or kvm where KVM really runs the guest (nested KVM may hang in the kernel's decompressor)")
	fs.StringVar(&o.memory, "m", "2G", "guest memory `SIZE`")
	fs.BoolVar(&o.verbose, "v", false, "list every result, not only failures and skips")
	fs.BoolVar(&o.selftestsDir, "selftests-dir", false, "only build (or find in -cache) the kernel source and its LUO selftests, print the selftests' directory on stdout and exit, booting nothing")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.jobs < 1 {
		return o, errors.New("-j must be at least 1")
	}
	for _, c := range splitList(o.chains) {
		if !slices.Contains(chainNames(), c) {
			return o, fmt.Errorf("-chains: no chain %q (have %s)", c, strings.Join(chainNames(), ", "))
		}
	}
	return o, nil
}

func splitList(s string) []string {
	var l []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			l = append(l, f)
		}
	}
	return l
}

func chainNames() []string {
	var names []string
	for _, c := range plan() {
		names = append(names, c.name)
	}
	return names
}

// hostMain runs luovm on the host and returns the exit status.
func hostMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "luovm: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.selftestsDir {
		dir, err := selftestsOnly(ctx, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "luovm: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, dir)
		return 0
	}
	rs, err := runLane(ctx, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "luovm: %v\n", err)
		return 1
	}
	if summarize(stdout, rs, o.verbose) > 0 {
		return 1
	}
	return 0
}

// selftestsOnly fetches the kernel source and builds its selftests, each
// unless the cache has it, logging to log, and returns the selftests'
// directory. It needs no QEMU and builds no kernel.
func selftestsOnly(ctx context.Context, o options, log io.Writer) (string, error) {
	src, err := fetchSource(ctx, o.cache, log)
	if err != nil {
		return "", fmt.Errorf("kernel source: %w", err)
	}
	dir, err := buildSelftests(ctx, src, o.cache, log)
	if err != nil {
		return "", fmt.Errorf("build the kernel's selftests: %w", err)
	}
	return dir, nil
}

// runLane gets the kernel, builds the image and runs the chains.
func runLane(ctx context.Context, o options, log io.Writer) ([]result, error) {
	t0 := time.Now()
	if err := ensureTools(ctx, log, vmTools); err != nil {
		return nil, err
	}
	kernel := o.kernel
	var src kernelSource
	haveSrc := false
	if kernel == "" || o.kselftests {
		var err error
		if src, err = fetchSource(ctx, o.cache, log); err != nil {
			return nil, fmt.Errorf("kernel source: %w", err)
		}
		haveSrc = true
	}
	if kernel == "" {
		var err error
		if kernel, err = buildKernel(ctx, src, luoKernelConfig, o.cache, log); err != nil {
			return nil, fmt.Errorf("build the kernel: %w", err)
		}
	}
	selftests := ""
	if o.kselftests && haveSrc {
		var err error
		if selftests, err = buildSelftests(ctx, src, o.cache, log); err != nil {
			return nil, fmt.Errorf("build the kernel's selftests: %w", err)
		}
	}
	fmt.Fprintf(log, "luovm: kernel %s ready after %v\n", kernel, time.Since(t0).Round(time.Second))

	out := o.out
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "luovm-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	initrd, err := buildImage(ctx, out, kernel, selftests, log)
	if err != nil {
		return nil, fmt.Errorf("build the image: %w", err)
	}
	var chains []chain
	want := splitList(o.chains)
	for _, c := range plan() {
		if len(want) == 0 || slices.Contains(want, c.name) {
			chains = append(chains, c)
		}
	}
	rs := runChains(ctx, chains, vmConfig{kernel: kernel, initrd: initrd, dir: out, accel: o.accel, memory: o.memory}, o.jobs, log)
	fmt.Fprintf(log, "luovm: consoles and results in %s; %v in all\n", out, time.Since(t0).Round(time.Second))
	if o.results != "" {
		if err := writeConformanceResults(o.results, rs); err != nil {
			return rs, err
		}
	}
	if o.want != "" {
		b, err := os.ReadFile(o.want)
		if err != nil {
			return rs, err
		}
		want, err := parseConformanceResults(b)
		if err != nil {
			return rs, fmt.Errorf("%s: %w", o.want, err)
		}
		rs = append(rs, compareConformance(rs, want, o.want)...)
	}
	return rs, nil
}
