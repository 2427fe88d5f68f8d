package main

import (
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
)

// fakeDevice serves a fake kernel's device on a unix socket at the
// machine's device path; liveupdate.Open of that path opens the fake.
func fakeDevice(k **fake.Kernel) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		kern := faketest.New(t)
		stop, err := kern.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop() })
		if k != nil {
			*k = kern
		}
	}
}

func TestCheckAllGood(t *testing.T) {
	var k *fake.Kernel
	m := machine{release: "6.19.2-1-generic", cmdline: goodCmdline, config: goodConfig, gz: true, debugfs: goodDebugfs, deviceFn: fakeDevice(&k)}
	got, code := runCheckOn(t, m)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	diff(t, got, `PASS     kernel                   Linux 6.19.2-1-generic (LUO needs 6.19 or later)
PASS     CONFIG_LIVEUPDATE        =y in ROOT/proc/config.gz
PASS     CONFIG_KEXEC_HANDOVER    =y in ROOT/proc/config.gz
PASS     CONFIG_LIVEUPDATE_MEMFD  =y in ROOT/proc/config.gz
PASS     liveupdate=on            "liveupdate=on" on the kernel command line
PASS     kho                      enabled: debugfs shows kho/
PASS     kho-debugfs              kho/ present (KHO is running); out/: finalize=0 sub_fdts=[LUO memblock]; no in/ (this boot did not come from a KHO kexec)
PASS     device                   ROOT/dev/liveupdate opens (unix socket: a fake kernel)

All checks passed: a live update is possible.
`)
	// check closed the device again.
	if k.State().DeviceOpen {
		t.Error("the device is still open after check")
	}
	got, code = runCheckOn(t, m, "-json")
	if code != 0 {
		t.Errorf("-json: exit status %d, want 0", code)
	}
	if want := "{\n  \"ready\": true,\n  \"checks\": [\n    {\n      \"name\": \"kernel\",\n      \"status\": \"PASS\",\n      \"detail\": \"Linux 6.19.2-1-generic (LUO needs 6.19 or later)\"\n    },\n"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("-json:\n%s", got)
	}
}

func TestCheckDeviceBusy(t *testing.T) {
	var dev *liveupdate.Device
	open := func(t *testing.T, path string) {
		fakeDevice(nil)(t, path)
		d, err := liveupdate.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		dev = d
	}
	m := machine{release: "6.19.2", cmdline: goodCmdline, config: goodConfig, gz: true, debugfs: goodDebugfs, deviceFn: open}
	got, code := runCheckOn(t, m)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	// A socket's holder cannot be found through /proc.
	diff(t, lines(got, "device"), `FAIL     device                   ROOT/dev/liveupdate is held by another process (pid unknown)
                                  fix: the kernel lets one process at a time open the device: stop that process, or check again once it has closed the device
`)
	if dev.Fd() < 0 {
		t.Error("the holder's device was closed")
	}

	// Processes whose fd links name the device are reported.
	m.holders = map[string]string{"4242": "luo-agent", "77": "vmm"}
	got, _ = runCheckOn(t, m)
	diff(t, lines(got, "device"), `FAIL     device                   ROOT/dev/liveupdate is held by another process (pid 77 vmm, pid 4242 luo-agent)
                                  fix: the kernel lets one process at a time open the device: stop that process, or check again once it has closed the device
`)
}
