//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// configAssignment is one "CONFIG_X=value" line of a config file, or a
// "# CONFIG_X is not set" line (value "n").
type configAssignment struct {
	Symbol string // with its CONFIG_ prefix
	Value  string // "y", "m", "n", a number or a quoted string
}

// parseConfig returns the assignments of a .config or a config fragment in
// order. Other comments and blank lines are skipped.
func parseConfig(b []byte) []configAssignment {
	var as []configAssignment
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			if sym, ok := strings.CutSuffix(rest, " is not set"); ok && strings.HasPrefix(sym, "CONFIG_") {
				as = append(as, configAssignment{sym, "n"})
			}
			continue
		}
		if sym, val, ok := strings.Cut(line, "="); ok && strings.HasPrefix(sym, "CONFIG_") {
			as = append(as, configAssignment{sym, val})
		}
	}
	return as
}

// droppedOptions returns, for each assignment of fragment that the final
// config does not have, "CONFIG_X=want (got)", got being the final value
// or "absent". A "# CONFIG_X is not set" of the fragment is kept when the
// final config sets X to n or does not mention it.
func droppedOptions(fragment, final []byte) []string {
	got := map[string]string{}
	for _, a := range parseConfig(final) {
		got[a.Symbol] = a.Value
	}
	var dropped []string
	for _, a := range parseConfig(fragment) {
		v, ok := got[a.Symbol]
		switch {
		case v == a.Value:
		case a.Value == "n" && !ok:
		case !ok:
			dropped = append(dropped, fmt.Sprintf("%s=%s (absent)", a.Symbol, a.Value))
		case v == "n":
			dropped = append(dropped, fmt.Sprintf("%s=%s (is not set)", a.Symbol, a.Value))
		default:
			dropped = append(dropped, fmt.Sprintf("%s=%s (=%s)", a.Symbol, a.Value, v))
		}
	}
	return dropped
}
