package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// kconfig is a kernel's build configuration: CONFIG_ symbols and their
// values ("y", "m", a number or a quoted string). Symbols written as
// "# CONFIG_X is not set" have the value "n".
type kconfig struct {
	Path   string // where it was read from
	values map[string]string
}

// value returns the symbol's value and whether the config mentions it.
func (c *kconfig) value(sym string) (string, bool) {
	v, ok := c.values[sym]
	return v, ok
}

// readKconfig reads the first readable config among paths; a path ending
// in ".gz" (such as /proc/config.gz) is gunzipped. It returns the error of
// every path tried when none is readable.
func readKconfig(paths []string) (*kconfig, error) {
	var errs []error
	for _, p := range paths {
		c, err := readKconfigFile(p)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("no kernel config path to try")
	}
	return nil, errors.Join(errs...)
}

func readKconfigFile(path string) (*kconfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	c := &kconfig{Path: path, values: make(map[string]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			if sym, ok := strings.CutSuffix(rest, " is not set"); ok && strings.HasPrefix(sym, "CONFIG_") {
				c.values[sym] = "n"
			}
			continue
		}
		if sym, val, ok := strings.Cut(line, "="); ok && strings.HasPrefix(sym, "CONFIG_") {
			c.values[sym] = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.values) == 0 {
		return nil, fmt.Errorf("%s: no CONFIG_ lines: not a kernel config", path)
	}
	return c, nil
}
