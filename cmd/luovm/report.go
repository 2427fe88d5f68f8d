//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// rank orders statuses when one test reports in several boots: a failure
// in any boot fails it, a skip in any boot skips it.
var rank = map[string]int{"PASS": 0, "SKIP": 1, "FAIL": 2}

// merge merges the results of the same name (a conformance case reports
// once per boot it has a stage in), keeping the worst, sorted by name.
func merge(rs []result) []result {
	byName := map[string]result{}
	for _, r := range rs {
		if old, ok := byName[r.name]; !ok || rank[r.status] > rank[old.status] {
			byName[r.name] = r
		}
	}
	out := make([]result, 0, len(byName))
	for _, r := range byName {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b result) int { return strings.Compare(a.name, b.name) })
	return out
}

// kexecSkip says whether a conformance skip is one for want of a kexec,
// which the VM lane exists to remove: it counts as a failure.
func kexecSkip(r result) bool {
	return r.status == "SKIP" && strings.HasPrefix(r.name, "conformance/") && strings.Contains(r.detail, "cannot kexec")
}

// summarize prints the failures and skips (every result with verbose),
// the counts of each kind of test, and the line "vm: N passed, N failed,
// N skipped". It returns the number of failures.
func summarize(w io.Writer, rs []result, verbose bool) int {
	rs = merge(rs)
	type count struct{ pass, fail, skip int }
	kinds := map[string]*count{}
	var total count
	for i := range rs {
		if kexecSkip(rs[i]) {
			rs[i].status = "FAIL"
			rs[i].detail = "skipped for want of a kexec in the VM: " + rs[i].detail
		}
		r := rs[i]
		kind, _, _ := strings.Cut(r.name, "/")
		c := kinds[kind]
		if c == nil {
			c = &count{}
			kinds[kind] = c
		}
		switch r.status {
		case "PASS":
			c.pass++
			total.pass++
		case "SKIP":
			c.skip++
			total.skip++
		default:
			c.fail++
			total.fail++
		}
		if verbose || r.status != "PASS" {
			if r.detail != "" {
				fmt.Fprintf(w, "%s %s: %s\n", r.status, r.name, r.detail)
			} else {
				fmt.Fprintf(w, "%s %s\n", r.status, r.name)
			}
		}
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		c := kinds[k]
		fmt.Fprintf(w, "vm %s: %d passed, %d failed, %d skipped\n", k, c.pass, c.fail, c.skip)
	}
	if len(rs) == 0 {
		total.fail++
		fmt.Fprintln(w, "FAIL vm: no results at all")
	}
	fmt.Fprintf(w, "vm: %d passed, %d failed, %d skipped\n", total.pass, total.fail, total.skip)
	return total.fail
}

// writeConformanceResults writes the conformance suite's merged results,
// one line a case: "PASS group/case", "SKIP group/case: why", "FAIL
// group/case: what".
func writeConformanceResults(path string, rs []result) error {
	var b strings.Builder
	for _, r := range merge(rs) {
		name, ok := strings.CutPrefix(r.name, "conformance/")
		if !ok {
			continue
		}
		if r.detail != "" && r.status != "PASS" {
			fmt.Fprintf(&b, "%s %s: %s\n", r.status, name, r.detail)
		} else {
			fmt.Fprintf(&b, "%s %s\n", r.status, name)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// parseConformanceResults parses what writeConformanceResults wrote: a map
// from "group/case" to its status.
func parseConformanceResults(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for i, l := range splitLines(b) {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		status, rest, _ := strings.Cut(l, " ")
		name, _, _ := strings.Cut(rest, ":")
		if _, ok := rank[status]; !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d: %q is not \"STATUS group/case[: detail]\"", i+1, l)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", i+1, name)
		}
		m[name] = status
	}
	return m, nil
}

// compareConformance returns a failure for every case whose merged status
// in rs differs from want's, and for every case only one side has.
func compareConformance(rs []result, want map[string]string, file string) []result {
	got := map[string]string{}
	for _, r := range merge(rs) {
		if name, ok := strings.CutPrefix(r.name, "conformance/"); ok {
			got[name] = r.status
		}
	}
	var out []result
	for _, name := range sortedNames(got, want) {
		g, w := got[name], want[name]
		if g == w {
			continue
		}
		if g == "" {
			g = "absent"
		}
		if w == "" {
			w = "absent"
		}
		out = append(out, result{status: "FAIL", name: "conformance-list/" + name, detail: fmt.Sprintf("%s on the kernel, %s in %s", g, w, file)})
	}
	if len(out) == 0 {
		out = append(out, result{status: "PASS", name: "conformance-list/" + fmt.Sprint(len(want)) + "_cases_as_listed"})
	}
	return out
}

// sortedNames returns the keys of both maps, sorted, once each.
func sortedNames(a, b map[string]string) []string {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}
