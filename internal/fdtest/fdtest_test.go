package fdtest

import (
	"os"
	"strconv"
	"testing"
)

// Leaked sees a new fd, and only new ones.
func TestLeaked(t *testing.T) {
	before := Table()
	if before == nil {
		t.Skip("no /proc/self/fd")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	leaked := Leaked(before, Table())
	want := strconv.Itoa(int(f.Fd())) + " -> /dev/null"
	if len(leaked) != 1 || leaked[0] != want {
		t.Fatalf("Leaked = %v, want [%s]", leaked, want)
	}
	f.Close()
	if leaked := Leaked(before, Table()); len(leaked) != 0 {
		t.Fatalf("after close, Leaked = %v", leaked)
	}
	if leaked := Leaked(Table(), before); len(leaked) != 0 {
		t.Fatalf("an fd closed meanwhile counts as leaked: %v", leaked)
	}
}

// Check fails a test that leaves an fd open.
func TestCheckFails(t *testing.T) {
	var leak *os.File
	ok := t.Run("leaky", func(t *testing.T) {
		r := &recorder{TB: t}
		Check(r, 0)
		leak, _ = os.Open(os.DevNull)
		r.runCleanups()
		if !r.failed {
			t.Error("Check did not report a leaked fd")
		}
	})
	if leak != nil {
		leak.Close()
	}
	if !ok {
		t.Fail()
	}
}

// recorder runs cleanups on demand and records Errorf instead of failing.
type recorder struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (r *recorder) Cleanup(f func())               { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, a ...any) { r.failed = true }
func (r *recorder) Helper()                        {}
func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
