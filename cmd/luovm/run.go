//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// tailLines is how many lines of a failed step's output are printed.
const tailLines = 40

// steps runs the commands of one fetch or build. The commands' output goes
// to a log file, and one line per step goes to the progress writer; when a
// command fails, the tail of the log file is printed there too.
type steps struct {
	what     string    // prefix of progress lines: "kernel", "selftests", "source"
	progress io.Writer // one line per step
	logPath  string
	logFile  *os.File
}

// newSteps opens (truncating) the log file at logPath.
func newSteps(what string, progress io.Writer, logPath string) (*steps, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &steps{what: what, progress: progress, logPath: logPath, logFile: f}, nil
}

// close closes the log file.
func (s *steps) close() error { return s.logFile.Close() }

// say writes one progress line.
func (s *steps) say(format string, args ...any) {
	fmt.Fprintf(s.progress, "%s: %s\n", s.what, fmt.Sprintf(format, args...))
}

// run runs name with args in dir, with env added to this process's
// environment, its stdout and stderr appended to the log file. A failure
// names the command and the log file, and prints the log's tail.
func (s *steps) run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	return s.exec(ctx, dir, env, s.logFile, true, name, args...)
}

// try is run for a command whose failure the caller can live with: the
// log's tail is not printed.
func (s *steps) try(ctx context.Context, dir string, env []string, name string, args ...string) error {
	return s.exec(ctx, dir, env, s.logFile, false, name, args...)
}

// output is run that also returns what the command wrote to stdout.
func (s *steps) output(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := s.exec(ctx, dir, env, io.MultiWriter(&out, s.logFile), true, name, args...)
	return out.Bytes(), err
}

func (s *steps) exec(ctx context.Context, dir string, env []string, stdout io.Writer, tail bool, name string, args ...string) error {
	fmt.Fprintf(s.logFile, "\n$ cd %s && %s\n", dir, strings.Join(append([]string{name}, args...), " "))
	cmdline := shortCmdline(name, args)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = stdout
	cmd.Stderr = s.logFile
	cmd.WaitDelay = 10 * time.Second // a child left holding a pipe must not hang us
	start := time.Now()
	err := cmd.Run()
	fmt.Fprintf(s.logFile, "# %s: %v after %s\n", name, errOrOK(err), time.Since(start).Round(time.Millisecond))
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s: %w", s.what, cmdline, ctx.Err())
	}
	if tail {
		s.printTail()
	}
	return fmt.Errorf("%s: %s: %w (output in %s)", s.what, cmdline, err, s.logPath)
}

// shortCmdline is the command line without apt's "-o option" pairs, for
// messages; the log file has the whole line.
func shortCmdline(name string, args []string) string {
	words := []string{name}
	for i := 0; i < len(args); i++ {
		if args[i] == "-o" && i+1 < len(args) {
			i++
			continue
		}
		words = append(words, args[i])
	}
	return strings.Join(words, " ")
}

// errOrOK is err, or "ok" when err is nil.
func errOrOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}

// printTail prints the last tailLines lines of the log file to progress.
func (s *steps) printTail() {
	b, err := readTail(s.logPath, 64<<10)
	if err != nil {
		return
	}
	fmt.Fprintf(s.progress, "%s: last lines of %s:\n%s", s.what, s.logPath, lastLines(b, tailLines))
}

// readTail returns at most the last limit bytes of the file at path.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-limit, 0)
	b := make([]byte, st.Size()-off)
	n, err := f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}

// lastLines returns the last n lines of b, each ending in a newline.
func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 || n <= 0 {
		return ""
	}
	i := len(b)
	for range n {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			i = 0
			break
		}
		i = j
	}
	if i > 0 {
		i++ // after the newline
	}
	return string(b[i:]) + "\n"
}
