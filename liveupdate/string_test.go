//go:build linux

package liveupdate_test

import (
	"fmt"
	"testing"

	"github.com/go-luo/luo/liveupdate/fake/faketest"
)

// String is the description its doc gives, which is not the name; Name
// is the name.
func TestSessionStringIsNotName(t *testing.T) {
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("x")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.String(); got != `luo session "x"` {
		t.Errorf("String() = %q, want %q", got, `luo session "x"`)
	}
	if got := fmt.Sprint(s); got != `luo session "x"` {
		t.Errorf("%%v prints %q", got)
	}
	if name, err := s.Name(); err != nil || name != "x" {
		t.Errorf("Name() = %q, %v; want x", name, err)
	}
}
