//go:build linux

package fake

import (
	"fmt"

	"github.com/go-luo/luo/kho"
)

// State returns a snapshot of the running kernel's sessions. Closes the
// user has made are reflected.
func (k *Kernel) State() State {
	k.reap()
	b := k.boot()
	b.serialize.RLock()
	defer b.serialize.RUnlock()
	b.devMu.Lock()
	st := State{LiveupdateNum: b.liveupdateNum, DeviceOpen: b.dev != nil}
	b.devMu.Unlock()
	st.Down = b.down != nil
	b.outgoing.mu.RLock()
	st.SessionBlocks = b.outgoing.nblocks
	b.outgoing.mu.RUnlock()
	st.Outgoing = b.outgoing.snapshot()
	st.Incoming = b.incoming.snapshot()
	return st
}

func (h *header) snapshot() []SessionInfo {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []SessionInfo
	for _, s := range h.sessions {
		s.mu.Lock()
		si := SessionInfo{Name: s.name, Retrieved: s.retrieved.Load()}
		for _, f := range s.files {
			si.Files = append(si.Files, FileInfo{Token: f.token(), Compatible: f.h.Compatible(), Retrieved: f.retrieveStatus == retrieveOK})
		}
		s.mu.Unlock()
		out = append(out, si)
	}
	return out
}

// CheckInvariants verifies the running kernel's bookkeeping: names unique
// within each list, tokens unique within each session, every preserved or
// retrieved file in the preserved-files table exactly once and nothing else
// there, counts within the limits, as many session blocks as the outgoing
// sessions need (one more after Linux 7.2's duplicate-create bug). Stress
// tests call it at the end. After Close there is no bookkeeping left to
// check: it returns ErrKernelClosed.
func (k *Kernel) CheckInvariants() error {
	k.objsMu.Lock()
	closed := k.closed
	k.objsMu.Unlock()
	if closed {
		return ErrKernelClosed
	}
	k.reap()
	b := k.boot()
	b.serialize.Lock() // no request may run meanwhile
	defer b.serialize.Unlock()
	b.outgoing.mu.RLock()
	defer b.outgoing.mu.RUnlock()
	b.incoming.mu.RLock()
	defer b.incoming.mu.RUnlock()
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()

	if n := len(b.outgoing.sessions); n > b.cfg.sessionLimit() {
		return fmt.Errorf("%d outgoing sessions, limit %d", n, b.cfg.sessionLimit())
	}
	if err := b.outgoing.checkBlocks(b.cfg.b.sessionBlocks); err != nil {
		return err
	}
	seen := map[*session]string{}
	tracked := map[*file]bool{}
	for _, l := range b.preserved {
		for _, f := range l {
			if tracked[f] {
				return fmt.Errorf("file token %#x tracked twice", f.token())
			}
			tracked[f] = true
		}
	}
	for _, h := range []struct {
		name string
		list *header
	}{{"outgoing", &b.outgoing}, {"incoming", &b.incoming}} {
		names := map[string]bool{}
		for _, s := range h.list.sessions {
			if where, ok := seen[s]; ok {
				return fmt.Errorf("session %q in %s and %s lists", s.name, where, h.name)
			}
			seen[s] = h.name
			if names[s.name] {
				return fmt.Errorf("two %s sessions named %q", h.name, s.name)
			}
			names[s.name] = true
			s.mu.Lock()
			tokens := map[uint64]bool{}
			for _, f := range s.files {
				if tokens[f.token()] {
					s.mu.Unlock()
					return fmt.Errorf("session %q: token %#x twice", s.name, f.token())
				}
				tokens[f.token()] = true
				live := h.name == "outgoing" || f.retrieveStatus == retrieveOK
				if live && b.cfg.b.doublePreserveBusy && !tracked[f] {
					s.mu.Unlock()
					return fmt.Errorf("session %q: token %#x not in the preserved-files table", s.name, f.token())
				}
				delete(tracked, f)
			}
			if len(s.files) > b.cfg.fileLimit() {
				s.mu.Unlock()
				return fmt.Errorf("session %q holds %d files, limit %d", s.name, len(s.files), b.cfg.fileLimit())
			}
			s.mu.Unlock()
		}
	}
	for f := range tracked {
		return fmt.Errorf("preserved-files table holds token %#x of no session", f.token())
	}
	return nil
}

// checkBlocks verifies the outgoing block set: ceil(n/51) blocks for n
// sessions, or one more when n is a non-zero multiple of 51 (a duplicate
// create left it); none without the block model.
func (h *header) checkBlocks(model bool) error {
	n := len(h.sessions)
	need := (n + kho.SessionsPerBlock - 1) / kho.SessionsPerBlock
	switch {
	case !model && h.nblocks == 0:
	case model && h.nblocks == need:
	case model && h.nblocks == need+1 && n > 0 && n%kho.SessionsPerBlock == 0:
	default:
		return fmt.Errorf("%d session blocks for %d outgoing sessions", h.nblocks, n)
	}
	return nil
}
