//go:build linux

package luoabi

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// linuxArches is every GOARCH Go supports on linux as of Go 1.26, for when
// `go tool dist list` cannot be run.
var linuxArches = []string{
	"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
	"mipsle", "ppc64", "ppc64le", "riscv64", "s390x",
}

// wantIOC is the _IO encoding of each architecture, from its asm/ioctl.h:
// powerpc, mips and sparc define _IOC_NONE as 1 with the direction at bit 29.
var wantIOC = map[string]IOCEncoding{
	"386": {0, 30}, "amd64": {0, 30}, "arm": {0, 30}, "arm64": {0, 30},
	"loong64": {0, 30}, "riscv64": {0, 30}, "s390x": {0, 30},
	"mips": {1, 29}, "mipsle": {1, 29}, "mips64": {1, 29}, "mips64le": {1, 29},
	"ppc64": {1, 29}, "ppc64le": {1, 29}, "sparc64": {1, 29},
}

// goCommand runs the go command with args, or returns ok false when it
// cannot be run here.
func goCommand(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, args...)
	// The test may run for another GOARCH (under qemu): ask about the
	// host's go command, which knows the same module and toolchain.
	cmd.Env = append(os.Environ(), "GOARCH=", "GOOS=")
	out, err := cmd.Output()
	if err != nil {
		t.Logf("go %s: %v", strings.Join(args, " "), err)
		return "", false
	}
	return string(out), true
}

func TestArchIOCCoversLinuxArches(t *testing.T) {
	for _, arch := range linuxArches {
		if _, ok := ArchIOC[arch]; !ok {
			t.Errorf("ArchIOC has no entry for linux/%s", arch)
		}
	}
	out, ok := goCommand(t, "tool", "dist", "list")
	if !ok {
		t.Log("go tool dist list unavailable; checked the fixed list only")
		return
	}
	n := 0
	for line := range strings.Lines(out) {
		arch, isLinux := strings.CutPrefix(strings.TrimSpace(line), "linux/")
		if !isLinux {
			continue
		}
		n++
		if _, ok := ArchIOC[arch]; !ok {
			t.Errorf("go tool dist list has linux/%s, which ArchIOC lacks", arch)
		}
	}
	t.Logf("go tool dist list: %d linux ports", n)
	if n < len(linuxArches) {
		t.Errorf("go tool dist list gave %d linux ports, fewer than the %d known", n, len(linuxArches))
	}
}

func TestArchIOCValues(t *testing.T) {
	if len(ArchIOC) != len(wantIOC) {
		t.Errorf("ArchIOC has %d entries, want %d", len(ArchIOC), len(wantIOC))
	}
	for arch, want := range wantIOC {
		if got, ok := ArchIOC[arch]; !ok || got != want {
			t.Errorf("ArchIOC[%q] = %+v (present %v), want %+v", arch, got, ok, want)
		}
	}
	if IOCGeneric != (IOCEncoding{None: 0, DirShift: 30}) || IOCDir29 != (IOCEncoding{None: 1, DirShift: 29}) {
		t.Errorf("IOCGeneric = %+v, IOCDir29 = %+v", IOCGeneric, IOCDir29)
	}
}

func TestRequestValues(t *testing.T) {
	want := map[liveupdate.Command][2]uint32{ // generic, dir29
		liveupdate.CmdCreateSession:   {0xBA00, 0x2000BA00},
		liveupdate.CmdRetrieveSession: {0xBA01, 0x2000BA01},
		liveupdate.CmdPreserveFD:      {0xBA40, 0x2000BA40},
		liveupdate.CmdRetrieveFD:      {0xBA41, 0x2000BA41},
		liveupdate.CmdFinish:          {0xBA42, 0x2000BA42},
		liveupdate.CmdGetName:         {0xBA43, 0x2000BA43},
	}
	if len(want) != len(Commands) {
		t.Fatalf("the table covers %d commands, the package has %d", len(want), len(Commands))
	}
	// Decimal values of the uapi header's LIVEUPDATE_IOCTL_* and
	// LIVEUPDATE_SESSION_* macros, as a C program on x86-64 prints them.
	dec := map[liveupdate.Command]uint32{
		liveupdate.CmdCreateSession: 47616, liveupdate.CmdRetrieveSession: 47617, liveupdate.CmdPreserveFD: 47680,
		liveupdate.CmdRetrieveFD: 47681, liveupdate.CmdFinish: 47682, liveupdate.CmdGetName: 47683,
	}
	for _, c := range Commands {
		w, ok := want[c]
		if !ok {
			t.Errorf("no expected value for %v", c)
			continue
		}
		if w[0] != dec[c] {
			t.Errorf("%v: table %#x, uapi header %d", c, w[0], dec[c])
		}
		if got := IOCGeneric.Request(c); got != w[0] {
			t.Errorf("IOCGeneric.Request(%v) = %#x, want %#x", c, got, w[0])
		}
		if got := IOCDir29.Request(c); got != w[1] {
			t.Errorf("IOCDir29.Request(%v) = %#x, want %#x", c, got, w[1])
		}
		for arch, e := range ArchIOC {
			idx := 0
			if wantIOC[arch] == IOCDir29 {
				idx = 1
			}
			if got := e.Request(c); got != w[idx] {
				t.Errorf("ArchIOC[%s].Request(%v) = %#x, want %#x", arch, c, got, w[idx])
			}
		}
		native := ArchIOC[runtime.GOARCH]
		if got := c.Request(); got != native.Request(c) || got != NativeIOC.Request(c) {
			t.Errorf("%v.Request() = %#x, ArchIOC[%s] gives %#x, NativeIOC %#x",
				c, got, runtime.GOARCH, native.Request(c), NativeIOC.Request(c))
		}
		if got := Nr(c.Request()); got != c {
			t.Errorf("Nr(%v.Request()) = %v", c, got)
		}
		if got := Nr(w[1]); got != c {
			t.Errorf("Nr(%#x) = %v, want %v", w[1], got, c)
		}
	}
	if NativeIOC != ArchIOC[runtime.GOARCH] {
		t.Errorf("NativeIOC = %+v, ArchIOC[%s] = %+v", NativeIOC, runtime.GOARCH, ArchIOC[runtime.GOARCH])
	}
	if got := Nr(0xC048BA43); got != liveupdate.CmdGetName {
		t.Errorf("Nr(_IOWR-style 0xc048ba43) = %v, want GET_NAME", got)
	}
}

// x/sys/unix constants defined with _IO() on every linux architecture, with
// their type and number.
var xsysIO = []struct {
	name    string
	value   uint32
	typ, nr uint8
}{
	{"BLKRRPART", unix.BLKRRPART, 0x12, 95},
	{"BLKFLSBUF", unix.BLKFLSBUF, 0x12, 97},
	{"PPPIOCDISCONN", unix.PPPIOCDISCONN, 't', 0x39},
}

// TestNativeIOCMatchesXSys checks the encoding this binary was built with
// against x/sys/unix's constants generated from the kernel headers of the
// same architecture. Run under qemu for the other byte orders and
// encodings.
func TestNativeIOCMatchesXSys(t *testing.T) {
	for _, x := range xsysIO {
		if got := NativeIOC.IO(x.typ, x.nr); got != x.value {
			t.Errorf("%s: NativeIOC.IO(%#x, %d) = %#x, x/sys/unix has %#x", x.name, x.typ, x.nr, got, x.value)
		}
		if got := ArchIOC[runtime.GOARCH].IO(x.typ, x.nr); got != x.value {
			t.Errorf("%s: ArchIOC[%s].IO = %#x, x/sys/unix has %#x", x.name, runtime.GOARCH, got, x.value)
		}
	}
}

// TestArchIOCMatchesXSysSources reads every linux zerrors file of the
// x/sys/unix this module uses and checks ArchIOC against its _IO
// constants, so every architecture is checked on any host.
func TestArchIOCMatchesXSysSources(t *testing.T) {
	dir, ok := goCommand(t, "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys")
	dir = strings.TrimSpace(dir)
	if !ok || dir == "" {
		t.Skip("cannot locate the golang.org/x/sys module source")
	}
	checked := 0
	for arch := range ArchIOC {
		path := filepath.Join(dir, "unix", "zerrors_linux_"+arch+".go")
		consts, err := readConsts(path)
		if err != nil {
			t.Errorf("%s: %v", arch, err)
			continue
		}
		for _, x := range xsysIO {
			v, ok := consts[x.name]
			if !ok {
				t.Errorf("%s: %s not in %s", arch, x.name, path)
				continue
			}
			if got := ArchIOC[arch].IO(x.typ, x.nr); uint64(got) != v {
				t.Errorf("%s: ArchIOC.IO for %s = %#x, x/sys has %#x", arch, x.name, got, v)
			}
		}
		checked++
	}
	if checked != len(ArchIOC) {
		t.Errorf("checked %d of %d architectures", checked, len(ArchIOC))
	}
}

// readConsts returns the hex constants "NAME = 0x..." of a Go source file.
func readConsts(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := make(map[string]uint64)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		val = strings.TrimSpace(val)
		if !strings.HasPrefix(val, "0x") {
			continue
		}
		if v, err := strconv.ParseUint(val[2:], 16, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}
