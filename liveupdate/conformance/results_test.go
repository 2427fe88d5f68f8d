package conformance_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate/conformance"
)

func TestResultsFormat(t *testing.T) {
	r := conformance.Results{
		"kexec/many":   {Status: conformance.Pass},
		"create/dup":   {Status: conformance.Fail},
		"limits/max":   {Status: conformance.Skip, Reason: "no limit\n  within reach "},
		"limits/files": {Status: conformance.Skip},
	}
	var b strings.Builder
	n, err := r.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	const want = "FAIL create/dup\n" +
		"PASS kexec/many\n" +
		"SKIP limits/files: (no reason given)\n" +
		"SKIP limits/max: no limit within reach\n"
	if b.String() != want || n != int64(len(want)) {
		t.Fatalf("WriteTo wrote %d bytes:\n%s\nwant:\n%s", n, b.String(), want)
	}
	got, err := conformance.ParseResults(strings.NewReader("# a rig's header\n\n" + want))
	if err != nil {
		t.Fatal(err)
	}
	r["limits/max"] = conformance.Result{Status: conformance.Skip, Reason: "no limit within reach"}
	r["limits/files"] = conformance.Result{Status: conformance.Skip, Reason: "(no reason given)"}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("ParseResults = %v, want %v", got, r)
	}
}

func TestParseResultsErrors(t *testing.T) {
	for in, want := range map[string]string{
		"PASS\n":                      "line 1",
		"OK a/b\n":                    `unknown status "OK"`,
		"PASS a/b\nFAIL a/b\n":        "line 2: case a/b listed twice",
		"SKIP a/b\n":                  `needs ": REASON"`,
		"PASS nogroup\n":              `"nogroup" is not a case name`,
		"PASS a/b c\n":                `"a/b c" is not a case name`,
		"PASS a/b\n\nSKIP /b: why\n":  "line 3",
		"FAIL a/b: with a reason\n":   "is not a case name",
		"PASS a/b\nPASS a/c\nPASS x ": "line 3",
	} {
		r, err := conformance.ParseResults(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseResults(%q) = %v, %v; want an error containing %q", in, r, err, want)
		}
	}
}

func TestMergeResults(t *testing.T) {
	pass := conformance.Result{Status: conformance.Pass}
	fail := conformance.Result{Status: conformance.Fail}
	skip := func(why string) conformance.Result { return conformance.Result{Status: conformance.Skip, Reason: why} }
	boot0 := conformance.Results{"g/a": pass, "g/b": pass, "g/c": skip("first"), "g/d": fail, "g/only0": pass}
	boot1 := conformance.Results{"g/a": pass, "g/b": skip("later"), "g/c": skip("second"), "g/d": pass}
	boot2 := conformance.Results{"g/a": fail, "g/c": pass}
	got := conformance.MergeResults(boot0, boot1, boot2)
	want := conformance.Results{"g/a": fail, "g/b": skip("later"), "g/c": skip("first"), "g/d": fail, "g/only0": pass}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MergeResults = %v, want %v", got, want)
	}
	if len(conformance.MergeResults()) != 0 {
		t.Fatal("MergeResults of nothing is not empty")
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[conformance.Status]string{conformance.Pass: "PASS", conformance.Skip: "SKIP", conformance.Fail: "FAIL", 7: "Status(7)"} {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
