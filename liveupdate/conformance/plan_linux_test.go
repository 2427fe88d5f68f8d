//go:build linux

package conformance

import "testing"

// TestStagePlan checks that stagePlan names cases of the suite, each with
// at least two stages, and that SplitBoots is the most stages of any; and
// that the cases' parts of split session names differ.
func TestStagePlan(t *testing.T) {
	cases := map[string]bool{}
	hashes := map[string]string{}
	for _, g := range groups() {
		for _, c := range g.cases {
			id := g.name + "/" + c.name
			if cases[id] {
				t.Errorf("case %s listed twice", id)
			}
			cases[id] = true
			h := caseHash(id)
			if other, ok := hashes[h]; ok {
				t.Errorf("cases %s and %s have the same hash %s in split session names", other, id, h)
			}
			hashes[h] = id
		}
	}
	most := 1
	for id, n := range stagePlan {
		if !cases[id] {
			t.Errorf("stagePlan names %s, which is not a case", id)
		}
		if n < 2 {
			t.Errorf("stagePlan gives %s %d stages: list only cases with 2 or more", id, n)
		}
		most = max(most, n)
	}
	if got := SplitBoots(); got != most {
		t.Errorf("SplitBoots() = %d, want %d", got, most)
	}
}
