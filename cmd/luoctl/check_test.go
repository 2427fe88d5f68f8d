package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// machine describes a fake machine's /proc, /boot, /sys and debugfs.
type machine struct {
	release  string
	cmdline  string
	config   string            // kernel config text; "" for none
	gz       bool              // config in /proc/config.gz rather than /boot
	debugfs  map[string]string // files under debugfs ("dir/" for a directory); nil: not mounted
	sysMisc  string            // /sys/class/misc/liveupdate/dev content, "" for none
	holders  map[string]string // pid -> comm of processes holding the device
	deviceFn func(t *testing.T, path string)
}

const goodConfig = `#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_KEXEC_HANDOVER=y
CONFIG_KEXEC_HANDOVER_DEBUGFS=y
# CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is not set
CONFIG_LIVEUPDATE=y
CONFIG_LIVEUPDATE_MEMFD=y
`

// oldConfig is a kernel from before LUO, as this project's CI machine.
const oldConfig = `CONFIG_DEBUG_FS=y
# CONFIG_KEXEC is not set
CONFIG_ARCH_SUPPORTS_KEXEC_HANDOVER=y
`

const goodCmdline = "BOOT_IMAGE=/vmlinuz-6.19.2 root=UUID=1234 ro quiet liveupdate=on kho=on -- liveupdate=off\n"

var goodDebugfs = map[string]string{
	"kho/out/finalize":          "0\n",
	"kho/out/scratch_phys":      "0x100000000\n",
	"kho/out/scratch_len":       "0x10000000\n",
	"kho/out/sub_fdts/LUO":      "",
	"kho/out/sub_fdts/memblock": "",
	"tracing/":                  "",
}

// build lays m out under a new temporary directory and returns the Env
// that looks there, with the directory itself.
func (m machine) build(t *testing.T) (Env, string) {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if strings.HasSuffix(rel, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/cmdline", m.cmdline)
	write("dev/", "")
	write("sys/kernel/debug/", "")
	if m.config != "" {
		if m.gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(m.config))
			zw.Close()
			write("proc/config.gz", b.String())
		} else {
			write("boot/config-"+m.release, m.config)
		}
	}
	for rel, content := range m.debugfs {
		write("sys/kernel/debug/"+rel, content)
	}
	if m.sysMisc != "" {
		write("sys/class/misc/liveupdate/dev", m.sysMisc)
	}
	env := Env{
		Release: m.release,
		Cmdline: filepath.Join(root, "proc", "cmdline"),
		ConfigPaths: []string{
			filepath.Join(root, "proc", "config.gz"),
			filepath.Join(root, "boot", "config-"+m.release),
		},
		DebugFS: filepath.Join(root, "sys", "kernel", "debug"),
		Device:  filepath.Join(root, "dev", "liveupdate"),
		Proc:    filepath.Join(root, "proc"),
		Sys:     filepath.Join(root, "sys"),
	}
	for pid, comm := range m.holders {
		write("proc/"+pid+"/comm", comm+"\n")
		write("proc/"+pid+"/fd/", "")
		if err := os.Symlink("/dev/null", filepath.Join(root, "proc", pid, "fd", "0")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(env.Device, filepath.Join(root, "proc", pid, "fd", "7")); err != nil {
			t.Fatal(err)
		}
	}
	if m.deviceFn != nil {
		m.deviceFn(t, env.Device)
	}
	return env, root
}

// runCheckOn runs "luoctl check args..." on m and returns its output with
// the machine's directory replaced by ROOT, and the exit status.
func runCheckOn(t *testing.T, m machine, args ...string) (string, int) {
	t.Helper()
	env, root := m.build(t)
	var out, errb bytes.Buffer
	code := exitStatus(&errb, checkWith(env, args, &out))
	if errb.Len() > 0 {
		t.Errorf("stderr: %s", errb.String())
	}
	return strings.ReplaceAll(out.String(), root, "ROOT"), code
}

// typical is this project's machines: a 6.18 kernel without LUO, no
// boot parameter, debugfs not mounted, no device.
var typical = machine{
	release: "6.18.44-fc-v657",
	cmdline: "console=ttyS0 quiet reboot=k panic=1 -- --init-flag\n",
	config:  oldConfig,
	gz:      true,
}

func TestCheckTypicalMachine(t *testing.T) {
	got, code := runCheckOn(t, typical)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	diff(t, got, `FAIL     kernel                   Linux 6.18.44-fc-v657: LUO needs 6.19 or later
                                  fix: boot Linux 6.19 or later built with CONFIG_LIVEUPDATE=y, CONFIG_KEXEC_HANDOVER=y and CONFIG_LIVEUPDATE_MEMFD=y
FAIL     CONFIG_LIVEUPDATE        missing from ROOT/proc/config.gz: this kernel does not have it
                                  fix: build the kernel with CONFIG_LIVEUPDATE=y (the Live Update Orchestrator and /dev/liveupdate)
FAIL     CONFIG_KEXEC_HANDOVER    missing from ROOT/proc/config.gz: this kernel does not have it
                                  fix: build the kernel with CONFIG_KEXEC_HANDOVER=y (KHO, which hands preserved memory to the next kernel)
FAIL     CONFIG_LIVEUPDATE_MEMFD  missing from ROOT/proc/config.gz: this kernel does not have it
                                  fix: build the kernel with CONFIG_LIVEUPDATE_MEMFD=y (preserving memfds across a live update)
FAIL     liveupdate=on            no liveupdate= on the kernel command line (ROOT/proc/cmdline): LUO is off by default
                                  fix: add liveupdate=on to the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
FAIL     kho                      this kernel is built without KHO (CONFIG_KEXEC_HANDOVER is not y in ROOT/proc/config.gz), so LUO is off
                                  fix: build the kernel with CONFIG_KEXEC_HANDOVER=y and boot it with kho=on (or build it with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y as well)
UNKNOWN  kho-debugfs              debugfs is not mounted at ROOT/sys/kernel/debug
                                  hint: mount it (mount -t debugfs none ROOT/sys/kernel/debug) and check again, to see KHO's state
FAIL     device                   ROOT/dev/liveupdate does not exist
                                  fix: the kernel creates it only when LUO is built in (CONFIG_LIVEUPDATE=y), KHO is enabled and it was booted with liveupdate=on: fix the failures above and reboot (or give -device the right path; the kernel's is /dev/liveupdate)

A live update is NOT possible here: 7 check(s) failed.
`)
}

func TestCheckJSON(t *testing.T) {
	got, code := runCheckOn(t, typical, "-json")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	var rep Report
	dec := json.NewDecoder(strings.NewReader(got))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v in %s", err, got)
	}
	if rep.Ready || len(rep.Checks) != 8 {
		t.Fatalf("ready %v with %d checks, want false with 8", rep.Ready, len(rep.Checks))
	}
	want := []struct {
		name   string
		status Status
	}{
		{"kernel", Fail}, {"CONFIG_LIVEUPDATE", Fail}, {"CONFIG_KEXEC_HANDOVER", Fail},
		{"CONFIG_LIVEUPDATE_MEMFD", Fail}, {"liveupdate=on", Fail}, {"kho", Fail},
		{"kho-debugfs", Unknown}, {"device", Fail},
	}
	for i, w := range want {
		c := rep.Checks[i]
		if c.Name != w.name || c.Status != w.status {
			t.Errorf("check %d: %s %s, want %s %s", i, c.Name, c.Status, w.name, w.status)
		}
		if c.Status == Fail && c.Fix == "" {
			t.Errorf("check %s FAILs without a fix", c.Name)
		}
	}
	// The field names are the document's interface.
	for _, key := range []string{`"ready": false`, `"checks": [`, `"name": "kernel"`, `"status": "FAIL"`, `"detail": "Linux 6.18.44-fc-v657: LUO needs 6.19 or later"`, `"fix": "boot Linux 6.19`} {
		if !strings.Contains(got, key) {
			t.Errorf("JSON lacks %s:\n%s", key, got)
		}
	}
}

// lines returns the check lines of a report whose name is one of names,
// with their fix or hint line.
func lines(out string, names ...string) string {
	var b strings.Builder
	keep := false
	for _, l := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(l, " ") {
			if keep {
				b.WriteString(l)
			}
			continue
		}
		f := strings.Fields(l)
		keep = false
		for _, n := range names {
			if len(f) > 1 && f[1] == n {
				keep = true
			}
		}
		if keep {
			b.WriteString(l)
		}
	}
	return b.String()
}

func TestCheckOldKernel(t *testing.T) {
	m := machine{release: "6.18.0-rc3+", cmdline: goodCmdline, config: goodConfig, debugfs: goodDebugfs}
	got, code := runCheckOn(t, m)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	diff(t, lines(got, "kernel"), `FAIL     kernel                   Linux 6.18.0-rc3+: LUO needs 6.19 or later
                                  fix: boot Linux 6.19 or later built with CONFIG_LIVEUPDATE=y, CONFIG_KEXEC_HANDOVER=y and CONFIG_LIVEUPDATE_MEMFD=y
`)
	for _, rel := range []string{"6.19.0", "6.20.1-generic", "7.0.0", "10.1"} {
		if r := checkKernel(rel, nil); r.Status != Pass {
			t.Errorf("kernel %s: %s %s", rel, r.Status, r.Detail)
		}
	}
	for _, rel := range []string{"5.15.0-91-generic", "6.1.0", "6.9.12", "4.19"} {
		if r := checkKernel(rel, nil); r.Status != Fail || r.Fix == "" {
			t.Errorf("kernel %s: %s %s", rel, r.Status, r.Detail)
		}
	}
	if r := checkKernel("weird", nil); r.Status != Unknown {
		t.Errorf("kernel weird: %s", r.Status)
	}
}

func TestCheckMissingBootParameter(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    string
	}{
		{"root=/dev/sda1 kho=on\n", `FAIL     liveupdate=on            no liveupdate= on the kernel command line (ROOT/proc/cmdline): LUO is off by default
                                  fix: add liveupdate=on to the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`},
		// After "--" the words are init's, not the kernel's.
		{"root=/dev/sda1 kho=on -- liveupdate=on\n", `FAIL     liveupdate=on            no liveupdate= on the kernel command line (ROOT/proc/cmdline): LUO is off by default
                                  fix: add liveupdate=on to the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`},
		{"liveupdate=on kho=on liveupdate=off\n", `FAIL     liveupdate=on            "liveupdate=off" on the kernel command line: LUO is disabled
                                  fix: change it to liveupdate=on on the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`},
		{"liveupdate=maybe kho=on\n", `FAIL     liveupdate=on            "liveupdate=maybe" on the kernel command line is not a boolean the kernel accepts (on/off, 1/0, y/n, ...): ignored, so LUO stays off
                                  fix: change it to liveupdate=on on the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`},
		{"liveupdate kho=on\n", `FAIL     liveupdate=on            "liveupdate" on the kernel command line is not a boolean the kernel accepts (on/off, 1/0, y/n, ...): ignored, so LUO stays off
                                  fix: change it to liveupdate=on on the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`},
		// An invalid value leaves the earlier valid one.
		{"liveupdate=1 liveupdate=bogus kho=on\n", `PASS     liveupdate=on            "liveupdate=1" on the kernel command line
`},
		{`liveupdate="yes" kho=on` + "\n", `PASS     liveupdate=on            "liveupdate=yes" on the kernel command line
`},
	} {
		m := machine{release: "6.19.2", cmdline: tc.cmdline, config: goodConfig, debugfs: goodDebugfs}
		got, code := runCheckOn(t, m)
		if code != 1 {
			t.Errorf("%q: exit status %d, want 1 (no device)", tc.cmdline, code)
		}
		diff(t, lines(got, "liveupdate=on"), tc.want)
	}
}

func TestCheckConfigUnreadable(t *testing.T) {
	m := machine{release: "6.19.2", cmdline: "ro liveupdate=on\n"}
	got, code := runCheckOn(t, m)
	if code != 1 {
		t.Errorf("exit status %d, want 1 (no device)", code)
	}
	diff(t, lines(got, "CONFIG_LIVEUPDATE", "CONFIG_KEXEC_HANDOVER", "CONFIG_LIVEUPDATE_MEMFD", "kho"),
		`UNKNOWN  CONFIG_LIVEUPDATE        kernel config unreadable (tried ROOT/proc/config.gz, ROOT/boot/config-6.19.2)
                                  hint: load the configs module (modprobe configs) for /proc/config.gz, or install this kernel's config as /boot/config-$(uname -r)
UNKNOWN  CONFIG_KEXEC_HANDOVER    kernel config unreadable (tried ROOT/proc/config.gz, ROOT/boot/config-6.19.2)
                                  hint: load the configs module (modprobe configs) for /proc/config.gz, or install this kernel's config as /boot/config-$(uname -r)
UNKNOWN  CONFIG_LIVEUPDATE_MEMFD  kernel config unreadable (tried ROOT/proc/config.gz, ROOT/boot/config-6.19.2)
                                  hint: load the configs module (modprobe configs) for /proc/config.gz, or install this kernel's config as /boot/config-$(uname -r)
UNKNOWN  kho                      no kho= on the kernel command line, and the kernel config is unreadable: KHO is on only if the kernel was built with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y
                                  hint: to be sure, add kho=on to the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`)

	// A config in /boot is read when /proc/config.gz is missing.
	m.config = goodConfig
	got, _ = runCheckOn(t, m)
	diff(t, lines(got, "CONFIG_LIVEUPDATE", "kho"), `PASS     CONFIG_LIVEUPDATE        =y in ROOT/boot/config-6.19.2
FAIL     kho                      no kho= on the kernel command line and CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is not y in ROOT/boot/config-6.19.2: KHO is off, so LUO is too
                                  fix: add kho=on to the kernel command line (with GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot
`)

	// A config that is not a config (or a broken gzip) counts as unreadable.
	m.config, m.gz = "not a config\n", false
	got, _ = runCheckOn(t, m)
	if !strings.Contains(got, "UNKNOWN  CONFIG_LIVEUPDATE ") {
		t.Errorf("garbage config:\n%s", got)
	}
}

func TestCheckConfigValues(t *testing.T) {
	cfg := "CONFIG_LIVEUPDATE=m\n# CONFIG_LIVEUPDATE_MEMFD is not set\nCONFIG_KEXEC_HANDOVER=y\nCONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y\n"
	m := machine{release: "6.19.2", cmdline: "liveupdate=on\n", config: cfg, gz: true}
	got, _ := runCheckOn(t, m)
	diff(t, lines(got, "CONFIG_LIVEUPDATE", "CONFIG_KEXEC_HANDOVER", "CONFIG_LIVEUPDATE_MEMFD", "kho"),
		`FAIL     CONFIG_LIVEUPDATE        =m in ROOT/proc/config.gz, needs =y
                                  fix: build the kernel with CONFIG_LIVEUPDATE=y (the Live Update Orchestrator and /dev/liveupdate)
PASS     CONFIG_KEXEC_HANDOVER    =y in ROOT/proc/config.gz
FAIL     CONFIG_LIVEUPDATE_MEMFD  not set in ROOT/proc/config.gz
                                  fix: build the kernel with CONFIG_LIVEUPDATE_MEMFD=y (preserving memfds across a live update)
PASS     kho                      on by default: CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y in ROOT/proc/config.gz
`)
}

func TestCheckKHO(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		config  string
		debugfs map[string]string
		want    string
	}{
		{"liveupdate=on kho=on", "", nil, `PASS     kho                      "kho=on" on the kernel command line`},
		{"liveupdate=on kho=Y", goodConfig, nil, `PASS     kho                      "kho=Y" on the kernel command line`},
		{"liveupdate=on kho=on kho=0", goodConfig, nil, `FAIL     kho                      "kho=0" on the kernel command line: KHO is disabled, so LUO is too`},
		{"liveupdate=on", "", goodDebugfs, `PASS     kho                      enabled: debugfs shows kho/`},
		{"liveupdate=on kho=xx", "", nil, `UNKNOWN  kho                      no kho= on the kernel command line, and the kernel config is unreadable: KHO is on only if the kernel was built with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y ("kho=xx" was ignored: not a boolean)`},
	} {
		m := machine{release: "6.19.2", cmdline: tc.cmdline, config: tc.config, debugfs: tc.debugfs}
		got, _ := runCheckOn(t, m)
		first, _, _ := strings.Cut(lines(got, "kho"), "\n")
		diff(t, first, tc.want)
	}
}

func TestCheckDebugfs(t *testing.T) {
	root := t.TempDir()
	if r := checkKHODebugfs(filepath.Join(root, "missing")); r.Status != Unknown || r.Running {
		t.Errorf("missing debugfs: %+v", r)
	}
	m := machine{release: "6.19.2", cmdline: goodCmdline, config: goodConfig, debugfs: map[string]string{"tracing/": ""}}
	got, _ := runCheckOn(t, m)
	diff(t, lines(got, "kho-debugfs"), "UNKNOWN  kho-debugfs              no kho/ in ROOT/sys/kernel/debug: KHO is disabled, or this kernel does not show it in debugfs (CONFIG_KEXEC_HANDOVER_DEBUGFS)\n")

	m.debugfs = map[string]string{
		"kho/out/sub_fdts/LUO": "",
		"kho/out/fdt":          "fdt",
		"kho/in/fdt":           "fdt",
		"kho/in/sub_fdts/LUO":  "",
	}
	got, _ = runCheckOn(t, m)
	diff(t, lines(got, "kho-debugfs"), "PASS     kho-debugfs              kho/ present (KHO is running); out/: fdt sub_fdts=[LUO]; in/: sub_fdts=[LUO] (this boot came from a KHO kexec)\n")
}

func TestCheckDeviceNodeMissing(t *testing.T) {
	m := machine{release: "6.19.2", cmdline: goodCmdline, config: goodConfig, debugfs: goodDebugfs}
	got, _ := runCheckOn(t, m)
	diff(t, lines(got, "device"), `FAIL     device                   ROOT/dev/liveupdate does not exist
                                  fix: the kernel creates it only when LUO is built in (CONFIG_LIVEUPDATE=y), KHO is enabled and it was booted with liveupdate=on; if all that holds, see 'dmesg | grep -i -e liveupdate -e kho' for why LUO did not start (or give -device the right path; the kernel's is /dev/liveupdate)
`)
	m.sysMisc = "10:262\n"
	got, _ = runCheckOn(t, m)
	diff(t, lines(got, "device"), `FAIL     device                   ROOT/dev/liveupdate does not exist, but the kernel has registered the liveupdate device (10:262)
                                  fix: create the node: mknod ROOT/dev/liveupdate c 10 262 (udev or devtmpfs normally do)
`)
	m.sysMisc = ""
	m.deviceFn = func(t *testing.T, path string) {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = runCheckOn(t, m)
	diff(t, lines(got, "device"), `FAIL     device                   ROOT/dev/liveupdate is not a character device (mode -rw-r--r--)
                                  fix: point -device at the LUO device, /dev/liveupdate
`)
}

func TestParseCmdline(t *testing.T) {
	got := parseCmdline(`  root=/dev/sda1 ro "quoted=a b" x="y z" flag foo= dyndbg="file a.c +p" -- init=1`)
	want := []cmdlineParam{
		{"root", "/dev/sda1", true},
		{"ro", "", false},
		{"quoted", "a b", true},
		{"x", "y z", true},
		{"flag", "", false},
		{"foo", "", true},
		{"dyndbg", "file a.c +p", true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("param %d: %q, want %q", i, got[i], want[i])
		}
	}
	if !paramEq("live-update", "live_update") || paramEq("liveupdate", "liveupdates") {
		t.Error("paramEq")
	}
}

func TestKstrtobool(t *testing.T) {
	for s, want := range map[string]bool{
		"on": true, "ON": true, "oN": true, "1": true, "y": true, "Y": true, "yes": true,
		"true": true, "T": true, "enable": true, "e": true, "1abc": true,
		"off": false, "OFF": false, "0": false, "n": false, "no": false, "false": false,
		"F": false, "disable": false, "d": false,
	} {
		if v, ok := kstrtobool(s); !ok || v != want {
			t.Errorf("kstrtobool(%q) = %v, %v; want %v, true", s, v, ok, want)
		}
	}
	for _, s := range []string{"", "o", "ox", "2", "maybe", "-1", " on"} {
		if _, ok := kstrtobool(s); ok {
			t.Errorf("kstrtobool(%q) accepted", s)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	env := DefaultEnv()
	var out bytes.Buffer
	for _, args := range [][]string{{"extra"}, {"-device"}, {"-device", ""}, {"-nosuch"}} {
		var errb bytes.Buffer
		if code := exitStatus(&errb, checkWith(env, args, &out)); code != 2 {
			t.Errorf("check %q: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "luoctl") {
			t.Errorf("check %q: stderr %q", args, errb.String())
		}
	}
}
