package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-luo/luo/liveupdate"
)

const checkUsage = `Usage: luoctl check [-device PATH] [-json]

Tells whether this machine can do a live update (LUO), one line per check:

  PASS|FAIL|UNKNOWN  NAME  DETAIL

and, under each FAIL, a "fix:" line saying what to do ("hint:" under an
UNKNOWN one). The checks: the kernel release (LUO needs Linux 6.19 or later);
CONFIG_LIVEUPDATE, CONFIG_KEXEC_HANDOVER and CONFIG_LIVEUPDATE_MEMFD in the
kernel config (/proc/config.gz or /boot/config-RELEASE); liveupdate=on on
the kernel command line; KHO enabled (kho=on, or
CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y); KHO's state in debugfs
(/sys/kernel/debug/kho); and that the device exists and opens. The device
is opened for a moment: while it is, an agent's open fails with EBUSY.

Exit status: 0 when nothing FAILs (a live update looks possible), 1 when
something does, 2 for a usage error.
`

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	Pass    Status = "PASS"
	Fail    Status = "FAIL"
	Unknown Status = "UNKNOWN" // luoctl cannot tell
)

// Result is one check's outcome.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"` // what to do: for a FAIL, and for some UNKNOWNs
}

// Report is the outcome of every check, in the order they ran. Ready is
// false when any check FAILed.
type Report struct {
	Ready  bool     `json:"ready"`
	Checks []Result `json:"checks"`
}

// Env is where check looks: every input path, so that tests can point it
// at a fake machine.
type Env struct {
	// Release is the kernel release (uname -r); empty asks the kernel.
	Release string
	// Cmdline is the kernel command line file (/proc/cmdline).
	Cmdline string
	// ConfigPaths are the kernel configs to try, first readable wins;
	// names ending in ".gz" are gunzipped. Nil means /proc/config.gz
	// then /boot/config-RELEASE.
	ConfigPaths []string
	// DebugFS is where debugfs is mounted (/sys/kernel/debug).
	DebugFS string
	// Device is the LUO device (/dev/liveupdate).
	Device string
	// Proc is procfs (/proc), scanned for the process holding the device.
	Proc string
	// Sys is sysfs (/sys), where the kernel lists its misc devices.
	Sys string
}

// DefaultEnv is this machine's.
func DefaultEnv() Env {
	return Env{
		Cmdline: "/proc/cmdline",
		DebugFS: "/sys/kernel/debug",
		Device:  liveupdate.DefaultPath,
		Proc:    "/proc",
		Sys:     "/sys",
	}
}

func runCheck(args []string, stdout, stderr io.Writer) error {
	return checkWith(DefaultEnv(), args, stdout)
}

// checkWith is the check command run against env (flags may change its
// device).
func checkWith(env Env, args []string, stdout io.Writer) error {
	fs := newFlagSet("check")
	fs.StringVar(&env.Device, "device", env.Device, "`PATH` of the LUO device: a device node, or a fake kernel's socket")
	asJSON := fs.Bool("json", false, "print the report as JSON: {\"ready\": bool, \"checks\": [{\"name\", \"status\", \"detail\", \"fix\"}]}")
	pos, err := parseFlags(fs, args, checkUsage, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("check takes no arguments, got %q: use -device PATH to name the device", pos[0])
	}
	if env.Device == "" {
		return usagef("check: -device needs a path, such as %s", liveupdate.DefaultPath)
	}
	rep := Check(&env)
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else if err := writeReport(stdout, rep); err != nil {
		return err
	}
	if !rep.Ready {
		return errReported
	}
	return nil
}

// Check runs every check against env.
func Check(env *Env) *Report {
	var rs []Result

	release := env.Release
	var relErr error
	if release == "" {
		release, relErr = kernelRelease()
	}
	rs = append(rs, checkKernel(release, relErr))

	paths := env.ConfigPaths
	if paths == nil {
		paths = []string{"/proc/config.gz"}
		if release != "" {
			paths = append(paths, "/boot/config-"+release)
		}
	}
	cfg, _ := readKconfig(paths)
	for _, o := range configOptions {
		rs = append(rs, checkConfig(o, cfg, paths))
	}

	var params []cmdlineParam
	b, cmdErr := os.ReadFile(env.Cmdline)
	if cmdErr == nil {
		params = parseCmdline(string(b))
	}
	dbg := checkKHODebugfs(env.DebugFS)
	rs = append(rs, checkLiveupdateParam(params, cmdErr, env.Cmdline))
	rs = append(rs, checkKHO(params, cmdErr, cfg, dbg.Running))
	rs = append(rs, dbg.Result)

	failed := false
	for _, r := range rs {
		failed = failed || r.Status == Fail
	}
	rs = append(rs, checkDevice(env, failed))

	rep := &Report{Ready: true, Checks: rs}
	for _, r := range rs {
		if r.Status == Fail {
			rep.Ready = false
		}
	}
	return rep
}

// LUO came with Linux 6.19.
const minMajor, minMinor = 6, 19

var releaseRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

func checkKernel(release string, err error) Result {
	r := Result{Name: "kernel"}
	if err != nil {
		r.Status, r.Detail = Unknown, "cannot tell the kernel release: "+err.Error()
		return r
	}
	m := releaseRE.FindStringSubmatch(release)
	if m == nil {
		r.Status, r.Detail = Unknown, fmt.Sprintf("cannot parse the kernel release %q (LUO needs Linux %d.%d or later)", release, minMajor, minMinor)
		return r
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < minMajor || major == minMajor && minor < minMinor {
		r.Status = Fail
		r.Detail = fmt.Sprintf("Linux %s: LUO needs %d.%d or later", release, minMajor, minMinor)
		r.Fix = fmt.Sprintf("boot Linux %d.%d or later built with CONFIG_LIVEUPDATE=y, CONFIG_KEXEC_HANDOVER=y and CONFIG_LIVEUPDATE_MEMFD=y", minMajor, minMinor)
		return r
	}
	r.Status = Pass
	r.Detail = fmt.Sprintf("Linux %s (LUO needs %d.%d or later)", release, minMajor, minMinor)
	return r
}

type configOption struct {
	sym  string
	what string
}

var configOptions = []configOption{
	{"CONFIG_LIVEUPDATE", "the Live Update Orchestrator and /dev/liveupdate"},
	{"CONFIG_KEXEC_HANDOVER", "KHO, which hands preserved memory to the next kernel"},
	{"CONFIG_LIVEUPDATE_MEMFD", "preserving memfds across a live update"},
}

func checkConfig(o configOption, cfg *kconfig, tried []string) Result {
	r := Result{Name: o.sym}
	if cfg == nil {
		r.Status = Unknown
		r.Detail = "kernel config unreadable (tried " + strings.Join(tried, ", ") + ")"
		r.Fix = "load the configs module (modprobe configs) for /proc/config.gz, or install this kernel's config as /boot/config-$(uname -r)"
		return r
	}
	fix := fmt.Sprintf("build the kernel with %s=y (%s)", o.sym, o.what)
	v, ok := cfg.value(o.sym)
	switch {
	case !ok:
		r.Status, r.Detail, r.Fix = Fail, "missing from "+cfg.Path+": this kernel does not have it", fix
	case v == "y":
		r.Status, r.Detail = Pass, "=y in "+cfg.Path
	case v == "n":
		r.Status, r.Detail, r.Fix = Fail, "not set in "+cfg.Path, fix
	default:
		r.Status, r.Detail, r.Fix = Fail, "="+v+" in "+cfg.Path+", needs =y", fix
	}
	return r
}

// howToBoot says how to change the kernel command line.
const howToBoot = " (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot"

func addParam(p string) string { return "add " + p + " to the kernel command line" + howToBoot }
func changeParam(p string) string {
	return "change it to " + p + " on the kernel command line" + howToBoot
}

func checkLiveupdateParam(params []cmdlineParam, err error, path string) Result {
	r := Result{Name: "liveupdate=on"}
	if err != nil {
		r.Status, r.Detail = Unknown, "cannot read the kernel command line: "+err.Error()
		return r
	}
	b := lookupBool(params, "liveupdate")
	switch {
	case b.Set && b.Value:
		r.Status, r.Detail = Pass, fmt.Sprintf("%q on the kernel command line", b.Last.String())
	case b.Set:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%q on the kernel command line: LUO is disabled", b.Last.String())
		r.Fix = changeParam("liveupdate=on")
	case len(b.Invalid) > 0:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%q on the kernel command line is not a boolean the kernel accepts (on/off, 1/0, y/n, ...): ignored, so LUO stays off", b.Invalid[len(b.Invalid)-1].String())
		r.Fix = changeParam("liveupdate=on")
	default:
		r.Status = Fail
		r.Detail = "no liveupdate= on the kernel command line (" + path + "): LUO is off by default"
		r.Fix = addParam("liveupdate=on")
	}
	return r
}

const khoDefault = "CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT"

// checkKHO tells whether KHO is enabled: the last valid kho= on the command
// line, else the config's default. LUO turns itself off without KHO.
func checkKHO(params []cmdlineParam, cmdErr error, cfg *kconfig, running bool) Result {
	r := Result{Name: "kho"}
	var b boolParam
	if cmdErr == nil {
		b = lookupBool(params, "kho")
	}
	built := ""
	if cfg != nil {
		built, _ = cfg.value("CONFIG_KEXEC_HANDOVER")
	}
	switch {
	case running:
		r.Status, r.Detail = Pass, "enabled: debugfs shows kho/"
	case b.Set && !b.Value:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%q on the kernel command line: KHO is disabled, so LUO is too", b.Last.String())
		r.Fix = changeParam("kho=on")
	case cfg != nil && built != "y":
		r.Status = Fail
		r.Detail = "this kernel is built without KHO (CONFIG_KEXEC_HANDOVER is not y in " + cfg.Path + "), so LUO is off"
		r.Fix = "build the kernel with CONFIG_KEXEC_HANDOVER=y and boot it with kho=on (or build it with " + khoDefault + "=y as well)"
	case b.Set:
		r.Status, r.Detail = Pass, fmt.Sprintf("%q on the kernel command line", b.Last.String())
	case cmdErr != nil:
		r.Status, r.Detail = Unknown, "cannot read the kernel command line: "+cmdErr.Error()
	case cfg != nil:
		if v, _ := cfg.value(khoDefault); v == "y" {
			r.Status, r.Detail = Pass, "on by default: "+khoDefault+"=y in "+cfg.Path
			break
		}
		r.Status = Fail
		r.Detail = "no kho= on the kernel command line and " + khoDefault + " is not y in " + cfg.Path + ": KHO is off, so LUO is too"
		r.Fix = addParam("kho=on")
	default:
		r.Status = Unknown
		r.Detail = "no kho= on the kernel command line, and the kernel config is unreadable: KHO is on only if the kernel was built with " + khoDefault + "=y"
		r.Fix = "to be sure, " + addParam("kho=on")
	}
	if len(b.Invalid) > 0 && r.Status != Pass {
		r.Detail += fmt.Sprintf(" (%q was ignored: not a boolean)", b.Invalid[len(b.Invalid)-1].String())
	}
	return r
}

// writeReport writes rep as aligned lines, a fix: (FAIL) or hint: (UNKNOWN)
// line under a check that has one, and a summary.
func writeReport(w io.Writer, rep *Report) error {
	width := 0
	for _, r := range rep.Checks {
		width = max(width, len(r.Name))
	}
	var sb strings.Builder
	nfail, nunknown := 0, 0
	for _, r := range rep.Checks {
		fmt.Fprintf(&sb, "%-7s  %-*s  %s\n", r.Status, width, r.Name, r.Detail)
		switch {
		case r.Status == Fail:
			nfail++
			fix := r.Fix
			if fix == "" {
				fix = "see the detail above"
			}
			fmt.Fprintf(&sb, "%-7s  %-*s  fix: %s\n", "", width, "", fix)
		case r.Status == Unknown:
			nunknown++
			if r.Fix != "" {
				fmt.Fprintf(&sb, "%-7s  %-*s  hint: %s\n", "", width, "", r.Fix)
			}
		}
	}
	switch {
	case nfail > 0:
		fmt.Fprintf(&sb, "\nA live update is NOT possible here: %d check(s) failed.\n", nfail)
	case nunknown > 0:
		fmt.Fprintf(&sb, "\nNo check failed, but %d could not tell: a live update may be possible.\n", nunknown)
	default:
		fmt.Fprintf(&sb, "\nAll checks passed: a live update is possible.\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errors.Join(errors.New("writing JSON"), err)
	}
	return nil
}
