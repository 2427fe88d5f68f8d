package luoprog

// Shrink returns a program no longer than p for which fails still holds,
// as short as it can find: it drops chunks of operations, halves first,
// then smaller ones down to single operations, keeping every cut after
// which the program still fails, until no cut of one operation does. p
// must fail. Live updates are operations like the others, so a shorter
// program may have fewer stages.
func Shrink(p Program, fails func(Program) bool) Program {
	for chunk := max(len(p)/2, 1); ; {
		cut := false
		for i := 0; i+chunk <= len(p); {
			q := append(append(Program{}, p[:i]...), p[i+chunk:]...)
			if fails(q) {
				p, cut = q, true
				continue // the same i now names the next chunk
			}
			i++
		}
		if chunk == 1 && !cut {
			return p
		}
		if !cut {
			chunk = max(chunk/2, 1)
		}
	}
}
