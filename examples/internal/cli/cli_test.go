package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestStagesCheck(t *testing.T) {
	for _, c := range []struct {
		s    Stages
		want string // "" for no error
	}{
		{Stages{}, ""},
		{Stages{Image: "i", Stage: 1}, ""},
		{Stages{Device: "d", Stage: 2}, ""},
		{Stages{Image: "i", Device: "d", Stage: 1}, "exclude each other"},
		{Stages{Stage: 1}, "-stage needs -image"},
		{Stages{Image: "i"}, "need -stage 1 or -stage 2"},
		{Stages{Device: "d", Stage: 3}, "need -stage 1 or -stage 2"},
	} {
		err := c.s.Check()
		var ue UsageError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want nil", c.s, err)
		case c.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want a UsageError saying %q", c.s, err, c.want)
		}
	}
}

func TestParseAndExitCode(t *testing.T) {
	p := Program{Name: "prog", Usage: "Usage: prog\n"}
	parse := func(args ...string) (Stages, string, error) {
		var s Stages
		fs := p.FlagSet()
		s.Define(fs)
		var out bytes.Buffer
		err := p.Parse(fs, args, &out)
		return s, out.String(), err
	}
	s, _, err := parse("-image", "f", "-stage", "2")
	if err != nil || s != (Stages{Image: "f", Stage: 2}) {
		t.Errorf("parse: %+v, %v", s, err)
	}
	_, help, err := parse("-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(help, "Usage: prog\n") || !strings.Contains(help, "-image FILE") {
		t.Errorf("-h: %v, printed %q", err, help)
	}
	for _, args := range [][]string{{"-bogus"}, {"extra"}, {"-stage", "x"}} {
		var ue UsageError
		if _, _, err := parse(args...); !errors.As(err, &ue) {
			t.Errorf("parse %q: %v, want a UsageError", args, err)
		}
	}
	for _, c := range []struct {
		err  error
		code int
		want string
	}{
		{nil, 0, ""},
		{UsageError{Msg: "bad"}, 2, "prog: bad\nRun 'prog -h' for usage.\n"},
		{errors.New("failed"), 1, "prog: failed\n"},
	} {
		var stderr bytes.Buffer
		if code := p.ExitCode(c.err, &stderr); code != c.code || stderr.String() != c.want {
			t.Errorf("ExitCode(%v) = %d, %q; want %d, %q", c.err, code, stderr.String(), c.code, c.want)
		}
	}
}
