package conformance

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Status is the outcome of one case: Pass, Skip or Fail, in that order of
// precedence when outcomes are merged (MergeResults).
type Status int

const (
	// Pass: the case ran and found the target behaving as the kernel.
	Pass Status = iota
	// Skip: the case did not apply to the target (Result.Reason says
	// why).
	Skip
	// Fail: the case found a difference, or could not run.
	Fail
)

// String returns "PASS", "SKIP" or "FAIL", the words of the results format.
func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Skip:
		return "SKIP"
	case Fail:
		return "FAIL"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the outcome of one case.
type Result struct {
	Status Status
	// Reason is the skip message of a skipped case, on one line; empty
	// otherwise.
	Reason string
}

// Results maps each case that ran, by its name "GROUP/CASE" (such as
// "kexec/many_sessions_and_files"), to its outcome. Run returns one per
// run; cases a -test.run pattern left out, and in a split run the cases
// without a stage in this boot, have no entry.
type Results map[string]Result

// WriteTo writes r in the results format, one line per case sorted by
// name: "PASS GROUP/CASE", "FAIL GROUP/CASE" or "SKIP GROUP/CASE: REASON",
// each ending in "\n". ParseResults reads it back.
func (r Results) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		res := r[name]
		b.WriteString(res.Status.String())
		b.WriteByte(' ')
		b.WriteString(name)
		if res.Status == Skip {
			b.WriteString(": ")
			b.WriteString(oneLine(res.Reason))
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// oneLine makes a reason fit on one line of the results format.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "(no reason given)"
	}
	return s
}

// ParseResults reads the results format that Results.WriteTo writes.
// Empty lines and lines starting with '#' are ignored. A line of another
// form, an unknown status word, or a case named twice is an error that
// names the line.
func ParseResults(rd io.Reader) (Results, error) {
	r := Results{}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		word, rest, ok := strings.Cut(line, " ")
		if !ok || rest == "" {
			return nil, fmt.Errorf("conformance results line %d: %q: want \"STATUS GROUP/CASE\"", n, line)
		}
		var res Result
		name := rest
		switch word {
		case "PASS":
			res.Status = Pass
		case "FAIL":
			res.Status = Fail
		case "SKIP":
			res.Status = Skip
			var reason string
			name, reason, ok = strings.Cut(rest, ": ")
			if !ok {
				return nil, fmt.Errorf("conformance results line %d: %q: a SKIP line needs \": REASON\" after the case", n, line)
			}
			res.Reason = reason
		default:
			return nil, fmt.Errorf("conformance results line %d: %q: unknown status %q (want PASS, SKIP or FAIL)", n, line, word)
		}
		if err := checkCaseName(name); err != nil {
			return nil, fmt.Errorf("conformance results line %d: %w", n, err)
		}
		if _, dup := r[name]; dup {
			return nil, fmt.Errorf("conformance results line %d: case %s listed twice", n, name)
		}
		r[name] = res
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("conformance results: %w", err)
	}
	return r, nil
}

// checkCaseName checks that name has the form GROUP/CASE.
func checkCaseName(name string) error {
	group, c, ok := strings.Cut(name, "/")
	if !ok || group == "" || c == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("%q is not a case name GROUP/CASE", name)
	}
	return nil
}

// MergeResults merges the results of the boots of a split run (or of any
// runs) into one outcome per case: a case failed if it failed anywhere,
// else skipped if it skipped anywhere (with the first such reason, in
// argument order), else passed.
func MergeResults(rs ...Results) Results {
	m := Results{}
	for _, r := range rs {
		for name, res := range r {
			if old, ok := m[name]; !ok || res.Status > old.Status {
				m[name] = res
			}
		}
	}
	return m
}
