//go:build linux

package fake

import (
	"fmt"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// handover is what one kernel leaves for the next.
type handover struct {
	liveupdateNum uint64
	sessions      []handoverSession
}

type handoverSession struct {
	name  string
	files []handoverFile
}

type handoverFile struct {
	compatible string
	token      uint64
	data       any
}

// Kexec performs a live update, as reboot(LINUX_REBOOT_CMD_KEXEC) does
// with a kexec image loaded: it freezes every outgoing session's files in
// order and hands the sessions to the next kernel, which this Kernel then
// runs. The next kernel finds them as incoming sessions after its first
// Open. When a file cannot be frozen, everything frozen is unfrozen, every
// session stays as it was, and Kexec returns the error, as the kernel's
// reboot does.
//
// Device and session fds of the old kernel stay open (a test's process
// lives on, unlike a real one), but every request on them fails with an
// error matching unix.ESTALE; close them as usual.
func (k *Kernel) Kexec() error {
	k.reap()
	k.bootMu.Lock()
	defer k.bootMu.Unlock()
	b := k.cur
	h, err := b.serializeSessions()
	if err != nil {
		return &liveupdate.Error{Op: "kexec", Err: err}
	}
	next := newBoot(k, h)
	k.cur = next
	b.dead.Store(true)
	b.serialize.Unlock() // waiters wake, see dead, and answer stale
	b.shutdown()
	return nil
}

// serializeSessions is luo_session_serialize. On success it returns with
// b.serialize held for writing, as the kernel never releases it.
func (b *boot) serializeSessions() (*handover, error) {
	b.serialize.Lock()
	b.outgoing.mu.Lock()
	defer b.outgoing.mu.Unlock()
	h := &handover{liveupdateNum: b.liveupdateNum + 1}
	for i, s := range b.outgoing.sessions {
		hs, err := b.freezeSession(s)
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				b.unfreezeSession(b.outgoing.sessions[j])
			}
			b.serialize.Unlock()
			return nil, fmt.Errorf("session %q: %w", s.name, err)
		}
		h.sessions = append(h.sessions, hs)
	}
	return h, nil
}

func (b *boot) freezeSession(s *session) (handoverSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := handoverSession{name: s.name}
	for i, f := range s.files {
		data, err := f.h.freeze(f)
		if err != nil {
			for j := 0; j < i; j++ {
				s.files[j].h.unfreeze(s.files[j])
			}
			return handoverSession{}, err
		}
		hs.files = append(hs.files, handoverFile{compatible: f.h.compatible(), token: f.token, data: data})
	}
	return hs, nil
}

func (b *boot) unfreezeSession(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.h.unfreeze(f)
	}
}

// restore is luo_session_deserialize: it rebuilds the incoming sessions.
func (b *boot) restore(h *handover) error {
	b.liveupdateNum = h.liveupdateNum
	b.incoming.mu.Lock()
	defer b.incoming.mu.Unlock()
	for _, hs := range h.sessions {
		s := &session{name: hs.name}
		for _, hf := range hs.files {
			hd := b.k.handler(hf.compatible)
			if hd == nil {
				return unix.ENOENT
			}
			s.files = append(s.files, &file{h: hd, token: hf.token, data: hf.data, fd: -1, retrieved: -1})
		}
		b.incoming.sessions = append(b.incoming.sessions, s)
	}
	return nil
}
