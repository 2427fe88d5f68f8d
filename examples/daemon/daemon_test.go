//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-luo/luo/examples/internal/cli"
	"github.com/go-luo/luo/internal/fdtest"
	"github.com/go-luo/luo/internal/testexec"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"github.com/go-luo/luo/liveupdate/fdpass"
)

// TestMain lets the test binary be the client that the story starts (a copy
// of the running program, here the test binary, with -client).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == programName {
		main() // the program, as TestServeDevice runs it
	}
	if len(os.Args) > 1 && os.Args[1] == "-client" {
		os.Exit(program.ExitCode(run(os.Args[1:], os.Stdout), os.Stderr))
	}
	// Under -race, a child would sleep 1 s at exit by default.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// TestStory runs the one-command story twice, in a given socket directory,
// and checks that the client verified its state after the update and that
// the second run leaves no fd behind.
func TestStory(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"-dir", dir}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	before := fdtest.Table()
	out.Reset()
	if err := run([]string{"-dir", dir, "-name", "client-7"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if leaked := fdtest.Leaked(before, fdtest.Table()); len(leaked) > 0 {
		t.Errorf("the run left fds open: %v", leaked)
	}
	for _, want := range []string{
		`daemon: created outgoing session "client-7"; handing it over`,
		`client: received outgoing session "client-7"`,
		`client: preserved a memfd under token 1`,
		`the client has exited, the daemon holds the session`,
		`daemon: retrieved session "client-7" from the previous kernel; handing it over`,
		`client: received incoming session "client-7"`,
		`client: finished session "client-7"`,
		`client: verified: hello from client pid `,
		`OK: the client's memfd crossed the live update through the daemon`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The client that verified is not the one that preserved, and
	// neither is this process.
	var pids []string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "client: pid "); ok {
			pids = append(pids, strings.Fields(rest)[0])
		}
	}
	if len(pids) != 2 || pids[0] == pids[1] {
		t.Errorf("client pids %q, want two different ones", pids)
	}
	if _, err := os.Stat(filepath.Join(dir, "daemon.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is left behind: %v", err)
	}
}

// request sends one raw request line to the daemon at sock and returns the
// reply line and, after an OK, the direction of the session that came
// with it.
func request(t *testing.T, sock, line string) (string, liveupdate.Direction) {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	reply, err := readLine(c)
	if err != nil {
		t.Fatalf("request %q: %v", line, err)
	}
	if reply != replyOK {
		return reply, 0
	}
	s, err := fdpass.Receive(c)
	if err != nil {
		t.Fatalf("request %q: %v", line, err)
	}
	s.Close()
	return reply, s.Direction()
}

// TestProtocol puts good and bad requests to a daemon on a fake kernel.
func TestProtocol(t *testing.T) {
	k := faketest.New(t)
	sock := filepath.Join(t.TempDir(), "d.sock")
	d, err := startFake(k, sock, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	for _, tc := range []struct{ req, reply string }{
		{"SESSION a\n", "OK"},
		{"SESSION a\n", "OK"}, // the same session again
		{"HELLO\n", `ERR unknown request "HELLO"`},
		{"SESSION \n", `ERR session name "": invalid session name`},
		{"SESSION " + strings.Repeat("x", 64) + "\n", `ERR session name "xxx`},
		{strings.Repeat("x", 2*maxLine) + "\n", "ERR request line too long"},
	} {
		reply, dir := request(t, sock, tc.req)
		if !strings.HasPrefix(reply, tc.reply) {
			t.Errorf("request %.20q: reply %q, want %q...", tc.req, reply, tc.reply)
		}
		if tc.reply == "OK" && dir != liveupdate.Outgoing {
			t.Errorf("request %.20q: a session of direction %v with reply %q, want outgoing", tc.req, dir, reply)
		}
	}
	if got := d.held(); len(got) != 1 || got[0] != "a" {
		t.Errorf("held sessions %q, want [a]", got)
	}

	// The client's own checks: a name the kernel refuses never leaves it,
	// and a second preserve run finds its token taken.
	var out bytes.Buffer
	if err := client(sock, "", &out); !errors.Is(err, liveupdate.ErrInvalidName) {
		t.Errorf("client with an empty name: %v", err)
	}
	if err := client(sock, "b", &out); err != nil {
		t.Fatal(err)
	}
	if err := client(sock, "b", &out); err != nil || !strings.Contains(out.String(), "preserved already") {
		t.Errorf("client again: %v\n%s", err, out.String())
	}
	if err := client(filepath.Join(t.TempDir(), "none"), "b", &out); err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("client without a daemon: %v", err)
	}
}

// TestUsage checks the command-line mistakes and -h.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-client", "s", "-device", "d"},
		{"-client", "s", "-dir", "d"},
		{"-socket", "s"},
		{"-device", "d", "-dir", "x"},
		{"-name", ""},
		{"-name", strings.Repeat("n", 64)},
		{"-bogus"},
		{"extra"},
	} {
		var ue cli.UsageError
		if err := run(args, new(bytes.Buffer)); !errors.As(err, &ue) {
			t.Errorf("run %q: %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"Usage:", "-client SOCKET", "-device PATH", "-socket SOCKET", "-dir DIR", "-name NAME"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

// programName is the name under which the test binary is the program.
const programName = "daemon"

// TestServeDevice runs the program as a daemon serving a device (a
// fake kernel served on a unix socket, as /dev/liveupdate would be) and as
// its client, across a live update and a restart of the daemon.
func TestServeDevice(t *testing.T) {
	// The test binary holds every file of package main: under
	// programName its TestMain runs main, with no go build.
	bin := filepath.Join(t.TempDir(), programName)
	if err := testexec.LinkSelf(bin); err != nil {
		t.Fatal(err)
	}
	k := faketest.New(t)
	dir := t.TempDir()
	devPath := filepath.Join(dir, "liveupdate")
	stop, err := k.Listen(devPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sock := filepath.Join(dir, "daemon.sock")

	// startDaemon starts the daemon and waits until it serves; the
	// returned function stops it and returns its output.
	startDaemon := func() func() string {
		cmd := exec.Command(bin, "-device", devPath, "-socket", sock)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(pipe)
		first, err := r.ReadString('\n')
		if !strings.Contains(first, "serves "+devPath) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("daemon: %q, %v\n%s", first, err, stderr.String())
		}
		return func() string {
			cmd.Process.Signal(syscall.SIGTERM)
			rest, _ := io.ReadAll(r)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon: %v\n%s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Error("daemon did not stop on SIGTERM")
			}
			return first + string(rest)
		}
	}
	client := func() string {
		out, err := exec.Command(bin, "-client", sock).CombinedOutput()
		if err != nil {
			t.Fatalf("client: %v\n%s", err, out)
		}
		return string(out)
	}

	stopDaemon := startDaemon()
	if out := client(); !strings.Contains(out, "client: preserved a memfd under token 1") {
		t.Errorf("client before the update:\n%s", out)
	}
	if st := k.State(); len(st.Outgoing) != 1 || st.Outgoing[0].Name != defaultName {
		t.Errorf("outgoing sessions: %+v", st.Outgoing)
	}
	if err := k.Kexec(); err != nil {
		t.Fatal(err)
	}
	if out := stopDaemon(); !strings.Contains(out, "closed the device and 1 outgoing session(s)") {
		t.Errorf("daemon before the update:\n%s", out)
	}

	stopDaemon = startDaemon()
	out := client()
	if !strings.Contains(out, "client: verified: hello from client pid ") {
		t.Errorf("client after the update:\n%s", out)
	}
	if dout := stopDaemon(); !strings.Contains(dout, "retrieved session \""+defaultName+"\" from the previous kernel") {
		t.Errorf("daemon after the update:\n%s", dout)
	}
	if st := k.State(); len(st.Incoming) != 0 || st.DeviceOpen {
		t.Errorf("kernel after the story: %+v", st)
	}
}
