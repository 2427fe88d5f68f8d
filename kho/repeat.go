package kho

import (
	"hash/maphash"
	"slices"
)

// repeatIndexBits is how many low bits of a firstRepeat key hold the index.
const repeatIndexBits = 24

// firstRepeat returns the smallest i < n such that name(i) equals name(j)
// for some j < i, or -1: where a check of the names in order, each against
// those before it, finds its first repeat.
//
// It sorts one word per name, a hash of the name above its index, and
// compares names only where hashes meet. For 100,000 session names that is
// a fraction of the time of a map of the names, whose lookups each miss the
// caches once the map outgrows them (about 200 ns a name here, against 20 ns
// for 10,000). Equal names sort together whatever their number, so the
// work stays O(n log n) for any input.
func firstRepeat(n int, name func(int) string) int {
	if n < 2 {
		return -1
	}
	seed := maphash.MakeSeed()
	return firstRepeatHash(n, name, func(s string) uint64 { return maphash.String(seed, s) })
}

// firstRepeatHash is firstRepeat with the hash of names given.
func firstRepeatHash(n int, name func(int) string, hash func(string) uint64) int {
	if n >= 1<<repeatIndexBits {
		return firstRepeatMap(n, name)
	}
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = hash(name(i))<<repeatIndexBits | uint64(i)
	}
	slices.Sort(keys)
	first := -1
	var seen map[string]struct{}
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && keys[hi]>>repeatIndexBits == keys[lo]>>repeatIndexBits {
			hi++
		}
		if hi-lo > 1 {
			// Indices ascend within a run of one hash: the first
			// index found again is the run's first repeat.
			if seen == nil {
				seen = make(map[string]struct{})
			}
			clear(seen)
			for _, k := range keys[lo:hi] {
				i := int(k & (1<<repeatIndexBits - 1))
				s := name(i)
				if _, dup := seen[s]; dup {
					if first < 0 || i < first {
						first = i
					}
					break
				}
				seen[s] = struct{}{}
			}
		}
		lo = hi
	}
	return first
}

// firstRepeatMap is firstRepeat with a map of the names.
func firstRepeatMap(n int, name func(int) string) int {
	seen := make(map[string]struct{}, n)
	for i := range n {
		s := name(i)
		if _, dup := seen[s]; dup {
			return i
		}
		seen[s] = struct{}{}
	}
	return -1
}
