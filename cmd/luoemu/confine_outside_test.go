//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func init() {
	testHelpers["open"] = openHelper
	testHelpers["passfds"] = passFDsHelper
}

// openHelper opens /dev/liveupdate and prints "open ERRNO" ("open 0"
// when it opened).
func openHelper([]string) int {
	fd, err := unix.Open("/dev/liveupdate", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	fmt.Printf("open %s\n", errnoName(err))
	return 0
}

// passFDsHelper, in the tree, sends its device fd and a session's fd
// (session "passed") by SCM_RIGHTS to the socket args[0], waits for a
// byte back, and then shows that luoemu still serves it: "name NAME" for
// the session, "after 0" for a new session.
func passFDsHelper(args []string) int {
	fail := func(err error) int {
		fmt.Println("helper:", err)
		return 1
	}
	dev, err := unix.Open("/dev/liveupdate", unix.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	sess, err := createSession(dev, "passed")
	if err != nil {
		return fail(err)
	}
	c, err := net.Dial("unix", args[0])
	if err != nil {
		return fail(err)
	}
	uc := c.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix([]byte{'F'}, unix.UnixRights(dev, sess), nil); err != nil {
		return fail(err)
	}
	var b [1]byte
	if _, err := uc.Read(b[:]); err != nil {
		return fail(err)
	}
	name, err := sessionName(sess)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("name %s\n", name)
	s, err := createSession(dev, "after-hostile")
	fmt.Printf("after %s\n", errnoName(unwrapErrno(err)))
	if err == nil {
		unix.Close(s)
	}
	return 0
}

// outsideOpen runs the open helper outside any luoemu tree and returns
// its answer.
func outsideOpen(t *testing.T) string {
	t.Helper()
	argv := helperCommand(t, "open")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = withoutEnv(os.Environ(), ControlEnv)
	out, code := runOut(t, cmd)
	if code != 0 || !strings.HasPrefix(out, "open ") {
		t.Fatalf("open helper: exit %d:\n%s", code, out)
	}
	return strings.TrimSpace(strings.TrimPrefix(out, "open "))
}

// TestConfineOutside shows that luoemu's device is its tree's only: a
// process outside the tree that opens /dev/liveupdate while luoemu runs
// gets this machine's answer, and the fds the tree passes out by
// SCM_RIGHTS are sockets whose LUO ioctls the kernel answers (ENOTTY).
// Garbage written into them from outside does not hurt luoemu.
func TestConfineOutside(t *testing.T) {
	machine := outsideOpen(t)
	t.Logf("this machine's answer to an open of /dev/liveupdate: %s", machine)
	if _, err := os.Stat("/dev/liveupdate"); errors.Is(err, os.ErrNotExist) && machine != "ENOENT" {
		t.Fatalf("no /dev/liveupdate on this machine, yet an open gives %s", machine)
	}
	dir := filepath.Dir(controlPath(t))
	sock := filepath.Join(dir, "fds")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cmd := luoemu(nil, helperCommand(t, "passfds", sock)...)
	var out safeBuffer
	lines := startBackground(t, cmd, &out)
	conn, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(2*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(b[:], oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 2 {
		t.Fatalf("rights %v, %v", fds, err)
	}
	dev, sess := fds[0], fds[1]
	defer unix.Close(dev)
	defer unix.Close(sess)

	// luoemu runs, with the tree's device open: outside, the machine's
	// answer still.
	if got := outsideOpen(t); got != machine {
		t.Errorf("an open outside the tree while luoemu runs: %s, want this machine's %s", got, machine)
	}
	if fd, err := unix.Open("/dev/liveupdate", unix.O_RDWR|unix.O_CLOEXEC, 0); errnoName(err) != machine {
		t.Errorf("the test's own open: %v, want %s", err, machine)
	} else if err == nil {
		unix.Close(fd)
	}

	for _, c := range []struct {
		what string
		fd   int
		cmd  liveupdate.Command
		arg  []byte
	}{
		{"create session on the passed device", dev, liveupdate.CmdCreateSession, sessionArg("outside")},
		{"retrieve session on the passed device", dev, liveupdate.CmdRetrieveSession, sessionArg("passed")},
		{"get name on the passed session", sess, liveupdate.CmdGetName, sessionArg("")},
		{"preserve on the passed session", sess, liveupdate.CmdPreserveFD, []byte{16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}},
	} {
		var st unix.Stat_t
		if err := unix.Fstat(c.fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			t.Errorf("%s: the fd is not a socket outside the tree (mode %#o, %v)", c.what, st.Mode, err)
		}
		before := bytes.Clone(c.arg)
		if e := ioctlBuf(c.fd, c.cmd, c.arg); e != unix.ENOTTY {
			t.Errorf("%s: %v, want ENOTTY (the kernel's answer for a socket)", c.what, errnoName(e))
		}
		if !bytes.Equal(before, c.arg) {
			t.Errorf("%s: the argument was written: % x", c.what, c.arg)
		}
	}
	// Hostile bytes into the fake's end of each socket.
	junk := bytes.Repeat([]byte{0xff, 0x00, 0xBA, 0x40}, 1024)
	for _, fd := range []int{dev, sess} {
		if _, err := unix.Write(fd, junk); err != nil && err != unix.EPIPE && err != unix.ECONNRESET {
			t.Errorf("write to a passed fd: %v", err)
		}
	}
	if _, err := conn.Write([]byte{'G'}); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, lines); code != 0 {
		t.Fatalf("luoemu exited %d:\n%s", code, out.String())
	}
	got := out.String()
	for _, want := range []string{"name passed\n", "after 0\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the tree did not print %q after the outside's tries", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}
