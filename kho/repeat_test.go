package kho

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// firstRepeat finds what a check in order finds, for names without
// repeats, with repeats anywhere, all equal, and colliding hashes (which
// the map version has no notion of).
func TestFirstRepeat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]string{nil, {"a"}, {"a", "a"}, {"a", "b"}, {"b", "a", "b", "a"}}
	for _, n := range []int{3, 100, 5000} {
		var uniq, same, some []string
		for i := range n {
			uniq = append(uniq, fmt.Sprint("s-", i))
			same = append(same, "x")
			some = append(some, fmt.Sprint("s-", rng.IntN(n)))
		}
		cases = append(cases, uniq, same, some)
	}
	for _, names := range cases {
		get := func(i int) string { return names[i] }
		want := firstRepeatMap(len(names), get)
		if got := firstRepeat(len(names), get); got != want {
			t.Errorf("%d names (%.20q...): firstRepeat = %d, the map's %d", len(names), names, got, want)
		}
	}
}

// Names whose hashes collide are told apart, and a repeat among them is
// still the first: with a hash that makes every name collide, the run
// holds them all.
func TestFirstRepeatCollisions(t *testing.T) {
	collide := func(string) uint64 { return 42 }
	for _, c := range []struct {
		names []string
		want  int
	}{
		{[]string{"p", "q", "r"}, -1},
		{[]string{"p", "q", "r", "q", "p"}, 3},
		{[]string{"p", "q", "p", "q"}, 2},
	} {
		if got := firstRepeatHash(len(c.names), func(i int) string { return c.names[i] }, collide); got != c.want {
			t.Errorf("%q: firstRepeatHash = %d, want %d", c.names, got, c.want)
		}
	}
}
