//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/go-luo/luo/liveupdate/conformance"
	"golang.org/x/sys/unix"
)

// kernelResults is what the conformance suite found on Linux 7.2.13 in
// the VM lane, case by case.
const kernelResults = "../../liveupdate/conformance/testdata/linux-7.2.13.results"

// knownDeviations are the conformance cases where luoemu differs from
// Linux 7.2.13 by design: luoemu's status, the kernel's and why.
var knownDeviations = map[string]struct {
	luoemu, kernel conformance.Status
	why            string
}{
	// The filter sends luoemu only ioctls of LUO's type 0xBA (a VMM's
	// KVM ioctls must not pay for luoemu), so an ioctl of another type
	// on a fake fd is the socket's: ENOTTY, where the kernel's LUO,
	// which looks at the nr alone first, reads the size field (EFAULT).
	"dispatch_device/encoding_checked_after_reading_size":  {conformance.Fail, conformance.Pass, "an ioctl of another type on a fake fd is the socket's"},
	"dispatch_session/encoding_checked_after_reading_size": {conformance.Fail, conformance.Pass, "an ioctl of another type on a fake fd is the socket's"},
	"fds/proc_link_holds_whole_name":                       {conformance.Skip, conformance.Pass, "a fake fd's /proc link is socket:[inode]"},
}

// TestConformanceMatchesKernel runs the conformance suite's kernel target
// (package liveupdate's TestKernelConformance, an unmodified program that
// opens /dev/liveupdate) under luoemu as a split run, one luoemu run per
// boot through an image, with a holder in the tree that keeps the
// sessions until the live update, as the VM lane's guest does. Every
// case must have the kernel's result, but the known deviations, which
// must still be as listed.
func TestConformanceMatchesKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance suite in three luoemu runs")
	}
	t.Parallel() // its own directory, test binary and luoemu runs
	f, err := os.Open(kernelResults)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := conformance.ParseResults(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "liveupdate.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "../../liveupdate").CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./liveupdate: %v\n%s", err, out)
	}
	image := filepath.Join(dir, "image")
	var boots []conformance.Results
	for boot := range conformance.SplitBoots() {
		results := filepath.Join(dir, "boot"+strconv.Itoa(boot)+".results")
		last := boot == conformance.SplitBoots()-1
		cmd := luoemu([]string{"-image", image},
			helperCommand(t, "holdrun", bin, strconv.Itoa(boot), "luoemu"+strconv.Itoa(os.Getpid()), results, strconv.FormatBool(last), dir)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		f, ferr := os.Open(results)
		if ferr != nil {
			t.Fatalf("boot %d wrote no results (%v; luoemu: %v):\n%s", boot, ferr, err, out)
		}
		r, perr := conformance.ParseResults(f)
		f.Close()
		if perr != nil {
			t.Fatalf("boot %d: %v", boot, perr)
		}
		if err != nil {
			t.Logf("boot %d: luoemu: %v\n%s", boot, err, out)
		}
		boots = append(boots, r)
	}
	got := conformance.MergeResults(boots...)
	ids := map[string]bool{}
	for id := range got {
		ids[id] = true
	}
	for id := range kernel {
		ids[id] = true
	}
	var sorted []string
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	same := 0
	for _, id := range sorted {
		g, gok := got[id]
		k, kok := kernel[id]
		if d, ok := knownDeviations[id]; ok {
			if !gok || !kok || g.Status != d.luoemu || k.Status != d.kernel {
				t.Errorf("%s: known deviation (luoemu %v, kernel %v: %s) is now luoemu %v, kernel %v: update knownDeviations", id, d.luoemu, d.kernel, d.why, g.Status, k.Status)
			}
			continue
		}
		switch {
		case !gok:
			t.Errorf("%s: no result under luoemu; the kernel's: %v", id, k.Status)
		case !kok:
			t.Errorf("%s: luoemu %v, and the kernel's results have no such case: regenerate %s", id, g.Status, kernelResults)
		case g.Status != k.Status:
			t.Errorf("%s: luoemu %v (%s), kernel %v", id, g.Status, g.Reason, k.Status)
		default:
			same++
		}
	}
	t.Logf("%d cases as on Linux 7.2.13, %d known deviations", same, len(knownDeviations))
}

func init() { testHelpers["holdrun"] = holdRun }

// holdRun is one boot of TestConformanceMatchesKernel's split run, in the
// luoemu tree: it serves the conformance hold protocol, runs the suite's
// test binary, keeps the sessions handed to it and, but in the last boot,
// asks luoemu for the live update, which ends it.
// Arguments: test binary, boot, run id, results file, last, directory.
func holdRun(args []string) int {
	if len(args) != 6 {
		fmt.Fprintln(os.Stderr, "holdrun: want 6 arguments")
		return 2
	}
	bin, boot, run, results, last, dir := args[0], args[1], args[2], args[3], args[4] == "true", args[5]
	sock := filepath.Join(dir, "hold"+boot)
	os.Remove(sock)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdrun:", err)
		return 1
	}
	var held holder
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go held.serve(c)
		}
	}()
	cmd := exec.Command(bin, "-test.run", "^TestKernelConformance$", "-test.v")
	cmd.Env = append(os.Environ(),
		conformance.BootEnv+"="+boot, conformance.RunEnv+"="+run,
		conformance.HoldEnv+"="+sock, conformance.ResultsEnv+"="+results)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "holdrun: the suite:", err)
		code = 1
	}
	if last {
		return code
	}
	if err := requestKexec(os.Getenv(ControlEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "holdrun: kexec:", err)
		return 1
	}
	select {} // the live update ends the tree
}

// holder keeps the session fds the suite hands over until the live update.
type holder struct {
	mu  sync.Mutex
	fds []int
}

// serve receives one client's fds: HoldFDs messages with SCM_RIGHTS, then
// HoldEnd, answered with HoldKept.
func (h *holder) serve(c *net.UnixConn) {
	defer c.Close()
	for {
		buf := make([]byte, 1)
		oob := make([]byte, unix.CmsgSpace(4*conformance.HoldMaxFDs))
		n, noob, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil {
			for i := range msgs {
				if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					h.mu.Lock()
					h.fds = append(h.fds, fds...)
					h.mu.Unlock()
				}
			}
		}
		switch buf[0] {
		case conformance.HoldFDs:
		case conformance.HoldEnd:
			c.Write([]byte{conformance.HoldKept})
			return
		default:
			return
		}
	}
}
