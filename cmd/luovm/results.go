//go:build linux

package main

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// resultPrefix starts every line the guest writes to the results channel
// (the second serial port):
//
//	luovm: boot CHAIN N RELEASE   the kernel of boot N came up
//	luovm: result STATUS NAME [DETAIL]   STATUS is PASS, FAIL or SKIP
//	luovm: done CHAIN N           boot N ran all its steps
const resultPrefix = "luovm: "

// A result is the outcome of one test.
type result struct {
	status string // PASS, FAIL or SKIP
	name   string
	detail string
}

var (
	goTestLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)
	goTestRun  = regexp.MustCompile(`^=== (?:RUN|NAME|CONT|PAUSE)\s+(\S+)`)
	tapLine    = regexp.MustCompile(`^\s*(not ok|ok) [0-9]+ (.*)$`)
)

// parseGoTest returns the results of the leaf subtests in go test -v
// output: TestX/group/case becomes prefix/group/case. The detail of a
// failure or skip is the first line the test logged: -test.v prints a
// test's log lines as they come, after its "=== RUN", "=== NAME" or
// "=== CONT" line, and the "--- " lines only when its parent ends.
func parseGoTest(out []byte, prefix string) []result {
	var rs []result
	logged := map[string]string{}
	current := ""
	for _, l := range splitLines(out) {
		t := strings.TrimLeft(l, " ")
		if m := goTestRun.FindStringSubmatch(l); m != nil {
			current = m[1]
			continue
		}
		m := goTestLine.FindStringSubmatch(l)
		if m == nil {
			if current != "" && t != "" && t != l && logged[current] == "" {
				logged[current] = t
			}
			continue
		}
		current = ""
		parts := strings.SplitN(m[2], "/", 2)
		if len(parts) < 2 || !strings.Contains(parts[1], "/") {
			continue // a top-level test or a group: an aggregate
		}
		r := result{status: m[1], name: prefix + "/" + parts[1]}
		if r.status != "PASS" {
			r.detail = logged[m[2]]
		}
		rs = append(rs, r)
	}
	return rs
}

// parseTAP returns the results of kselftest TAP output: "ok N desc",
// "not ok N desc", "ok N desc # SKIP why".
func parseTAP(out []byte, prefix string) []result {
	var rs []result
	for _, l := range splitLines(out) {
		m := tapLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		desc, directive, _ := strings.Cut(m[2], "#")
		r := result{status: "PASS", name: prefix + "/" + strings.Join(strings.Fields(desc), "_")}
		directive = strings.TrimSpace(directive)
		switch {
		case m[1] == "not ok":
			r.status = "FAIL"
			r.detail = directive
		case strings.HasPrefix(strings.ToUpper(directive), "SKIP"):
			r.status = "SKIP"
			r.detail = strings.TrimSpace(directive[4:])
		}
		rs = append(rs, r)
	}
	return rs
}

func splitLines(b []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	return lines
}
