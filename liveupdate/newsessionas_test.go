//go:build linux

package liveupdate_test

import (
	"errors"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
)

// TestNewSessionAs checks that the direction given is the one reported,
// and that a direction that is neither is refused.
func TestNewSessionAs(t *testing.T) {
	k, err := fake.New()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	s, err := dev.CreateSession("as")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, dir := range []liveupdate.Direction{0, liveupdate.Outgoing, liveupdate.Incoming} {
		w, err := liveupdate.NewSessionAs(s.Fd(), dir)
		if err != nil {
			t.Fatalf("NewSessionAs(%v): %v", dir, err)
		}
		if got := w.Direction(); got != dir {
			t.Errorf("NewSessionAs(%v).Direction() = %v", dir, got)
		}
		w.Close()
	}
	for _, dir := range []liveupdate.Direction{liveupdate.AnyDirection, 4} {
		w, err := liveupdate.NewSessionAs(s.Fd(), dir)
		if err == nil {
			w.Close()
			t.Errorf("NewSessionAs(%v) succeeded", dir)
			continue
		}
		var e *liveupdate.Error
		if !errors.As(err, &e) {
			t.Errorf("NewSessionAs(%v): %v (%T), want a *liveupdate.Error", dir, err, err)
		}
	}
	if w, err := liveupdate.NewSessionAs(-1, liveupdate.Outgoing); err == nil {
		w.Close()
		t.Error("NewSessionAs(-1) succeeded")
	}
}
