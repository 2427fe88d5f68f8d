//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/go-luo/luo/examples/internal/cli"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
)

// main runs daemon with the command line and exits with its status.
func main() {
	os.Exit(program.ExitCode(run(os.Args[1:], os.Stdout), os.Stderr))
}

// Defaults.
const (
	defaultName   = "example-client"
	defaultSocket = "/run/luo-example-daemon.sock"
)

// program is daemon's name and help.
var program = cli.Program{Name: "daemon", Usage: usageText}

const usageText = `Usage:
  daemon [-dir DIR] [-name NAME]         the whole story on a fake kernel, in one command
  daemon -device PATH [-socket SOCKET]   serve a real kernel's LUO device until SIGINT or SIGTERM
  daemon -client SOCKET [-name NAME]     run the client once against a daemon

The daemon owns the LUO device and hands session fds to its clients over a
unix socket (SCM_RIGHTS); a client preserves its memfd in the session it
gets, and after the live update retrieves it from the same session, which
the daemon retrieved from the previous kernel.

With -device (root), run the clients, then kexec while the daemon runs
(kexec -e, not a kexec that stops every process first), then start the
daemon and run the clients again in the next kernel.

Flags:
`

// options are the parsed command line.
type options struct {
	dir, name      string
	device, socket string
	client         string
}

// parse parses args. For -h it prints the help to stdout and returns
// flag.ErrHelp.
func parse(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := program.FlagSet()
	fs.StringVar(&o.dir, "dir", "", "put the story's socket in `DIR` (default: a new temporary directory)")
	fs.StringVar(&o.name, "name", defaultName, "the client's session `NAME`")
	fs.StringVar(&o.device, "device", "", "serve the LUO device at `PATH`, usually "+liveupdate.DefaultPath)
	fs.StringVar(&o.socket, "socket", "", "with -device, listen on `SOCKET` (default "+defaultSocket+")")
	fs.StringVar(&o.client, "client", "", "run the client against the daemon listening on `SOCKET`")
	if err := program.Parse(fs, args, stdout); err != nil {
		return o, err
	}
	switch {
	case o.client != "" && (o.device != "" || o.socket != "" || o.dir != ""):
		return o, cli.UsageError{Msg: "-client runs the client only: it takes -name, not -device, -socket or -dir"}
	case o.device != "" && o.dir != "":
		return o, cli.UsageError{Msg: "-dir is for the story on a fake kernel; with -device, say where to listen with -socket"}
	case o.socket != "" && o.device == "":
		return o, cli.UsageError{Msg: "-socket needs -device PATH; the story puts its socket in -dir"}
	case o.device != "" && o.name != defaultName:
		return o, cli.UsageError{Msg: "-name names the client's session: give it with -client, or without flags"}
	}
	if err := liveupdate.ValidateName(o.name); err != nil {
		return o, cli.UsageError{Msg: fmt.Sprintf("-name %q: %v: 1 to %d bytes, no NUL", o.name, err, liveupdate.MaxNameLen)}
	}
	return o, nil
}

// run runs daemon with the command-line arguments args, narrating on
// stdout. The error says what failed and what to do.
func run(args []string, stdout io.Writer) error {
	o, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	out := &syncWriter{w: stdout}
	switch {
	case o.client != "":
		return client(o.client, o.name, out)
	case o.device != "":
		if o.socket == "" {
			o.socket = defaultSocket
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serveDevice(ctx, o.device, o.socket, out)
	}
	return story(o.dir, o.name, out)
}

// story runs the whole delegation story on a fake kernel: daemon here, the
// client as a child process, before and after the fake's live update.
func story(dir, name string, out *syncWriter) error {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "luo-daemon-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	sock := filepath.Join(dir, "daemon.sock")
	k, err := fake.New()
	if err != nil {
		return fmt.Errorf("start the fake kernel: %w", err)
	}
	defer k.Close()
	fmt.Fprintln(out, "daemon: delegation on a fake kernel, the client in a child process (daemon -h shows the other modes)")

	// Before the update: the client preserves its memfd in a session the
	// daemon created, and exits; the daemon keeps the session.
	d, err := startFake(k, sock, out)
	if err != nil {
		return err
	}
	if err := runClient(sock, name, out); err != nil {
		d.close()
		return err
	}
	kept := false
	for _, si := range k.State().Outgoing {
		if si.Name == name && len(si.Files) == 1 {
			kept = true
			fmt.Fprintf(out, "fake kernel: outgoing session %q holds token %d; the client has exited, the daemon holds the session\n", si.Name, si.Files[0].Token)
		}
	}
	if !kept {
		d.close()
		return fmt.Errorf("the session %q with the client's memfd is not in the kernel after the client exited", name)
	}

	// The update: the kernel freezes what the daemon holds; the old
	// kernel's daemon ends with it.
	if err := k.Kexec(); err != nil {
		d.close()
		return fmt.Errorf("kexec: %w", err)
	}
	fmt.Fprintf(out, "kexec: the fake kernel froze %d session(s) and booted the next kernel\n", len(d.held()))
	d.close()
	fmt.Fprintln(out, "daemon: stopped with the old kernel; starting again in the next one")

	// After the update: a new daemon, a new client, the same session.
	d, err = startFake(k, sock, out)
	if err != nil {
		return err
	}
	defer d.close()
	if err := runClient(sock, name, out); err != nil {
		return err
	}
	if left := k.State().Incoming; len(left) != 0 {
		return fmt.Errorf("the client left %d incoming session(s) unfinished", len(left))
	}
	fmt.Fprintln(out, "OK: the client's memfd crossed the live update through the daemon")
	return nil
}

// startFake starts a daemon that owns k's device and listens on sock.
func startFake(k *fake.Kernel, sock string, out io.Writer) (*daemon, error) {
	dev, err := k.Open()
	if err != nil {
		return nil, err
	}
	l, err := listen(sock)
	if err != nil {
		dev.Close()
		return nil, err
	}
	d := newDaemon(dev, out)
	d.start(l)
	fmt.Fprintf(out, "daemon: pid %d opened the device; listening on %s\n", os.Getpid(), sock)
	return d, nil
}

// runClient runs this program as the client against sock, in a child
// process, and waits for it. Its stdout goes to out.
func runClient(sock, name string, out *syncWriter) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this program to start the client: %w", err)
	}
	cmd := exec.Command(exe, "-client", sock, "-name", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = out
	if f, ok := out.w.(*os.File); ok {
		cmd.Stdout = f // the same file: lines stay in order
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("client (%s -client %s): %v: %s", exe, sock, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// serveDevice serves the LUO device at path on sock until ctx is done.
func serveDevice(ctx context.Context, path, sock string, out io.Writer) error {
	dev, err := liveupdate.Open(path)
	if err != nil {
		return err
	}
	l, err := listen(sock)
	if err != nil {
		dev.Close()
		return err
	}
	d := newDaemon(dev, out)
	d.start(l)
	fmt.Fprintf(out, "daemon: pid %d serves %s on %s; kexec while it runs, and stop it only after (stopping drops the sessions it holds)\n",
		os.Getpid(), path, sock)
	<-ctx.Done()
	n := len(d.held())
	d.close()
	fmt.Fprintf(out, "daemon: stopped; closed the device and %d outgoing session(s)\n", n)
	return nil
}

// syncWriter serializes writes to w from the daemon's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
