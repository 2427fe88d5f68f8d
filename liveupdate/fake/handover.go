//go:build linux

package fake

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/go-luo/luo/kho"
	"golang.org/x/sys/unix"
)

// Kexec performs a live update, as reboot(LINUX_REBOOT_CMD_KEXEC) does
// with a kexec image loaded: it freezes every outgoing session's files in
// order, writes them into a KHO image in the kernel's byte layout (luo-v5;
// package kho), and boots the next kernel from those bytes alone. The next
// kernel restores the sessions, as incoming, on its first Open. With
// WithImageFile the image is also written to that file, for a second stage
// that runs as another process; an image of more than kho.MaxImagePages
// pages (16 GiB), which that stage could not read, is not written: the
// Kexec fails with an error matching kho.ErrImageTooLarge (EFBIG) and
// every session stays as it was.
//
// When a file cannot be frozen, everything frozen is unfrozen, every
// session stays as it was, and Kexec returns the error, as the kernel's
// reboot does. Every failure is a *KexecError, which names the session and
// the file's token when a freeze failed. Device and session fds of the old kernel stay open (a
// test's process lives on, unlike a real one), but every request on them
// fails with an error matching unix.ESTALE; close them as usual.
//
// When the next kernel would panic at boot on the image (see PanicError;
// Linux 7.2 writes such an image after its duplicate-create bug), the
// kexec has happened but the machine does not come up: Kexec returns an
// error matching the *PanicError, the old kernel's fds answer ESTALE, and
// until Reboot every Open and Kexec fails with that *PanicError, as
// nothing runs on a machine whose kernel panicked. With WithImageFile the
// image has been written, so a second stage's New fails the same way.
//
// A fault armed by FailFreeze or FailRetrieve that nothing in this live
// update matches makes Kexec fail first with a *KexecError wrapping an
// *UnmatchedFaultError, with every session as it was (see those methods).
//
// After Close, Kexec fails with a *KexecError matching ErrKernelClosed.
func (k *Kernel) Kexec() error {
	k.reap()
	k.bootMu.Lock()
	defer k.bootMu.Unlock()
	if k.isClosed() {
		return &KexecError{Err: ErrKernelClosed}
	}
	b := k.cur
	if b.down != nil {
		return &KexecError{Err: b.down}
	}
	img, kerr := b.serializeSessions()
	if kerr != nil {
		return kerr
	}
	if k.cfg.imageFile != "" {
		if err := writeImageFile(k.cfg.imageFile, img); err != nil {
			img.Mem.Close()
			b.abortSerialize()
			return &KexecError{Err: err}
		}
	}
	next, err := bootFrom(k, img)
	if err != nil {
		// bootFrom fails only as the kernel's early initcall panics.
		img.Mem.Close()
		next = newBoot(k)
		next.down = err.(*PanicError)
	}
	k.cur = next
	k.faults.replaced(b, next)
	b.dead.Store(true)
	b.serialize.Unlock() // waiters wake, see dead, and answer stale
	b.shutdown()
	if next.down != nil {
		return &KexecError{Err: next.down}
	}
	return nil
}

// Reboot cold-boots the machine, as a reset or a power cycle does, with
// nothing handed over: the running kernel's sessions and preserved files
// are dropped (the old kernel's fds answer ESTALE), and the kernel that
// boots has no incoming sessions and live-update number 0. A machine that
// did not come up from a Kexec (a PanicError) runs again after it. With
// WithImageFile the image file is removed, as preserved memory does not
// survive a cold boot; Reboot fails only if that removal does, or with
// ErrKernelClosed after Close.
func (k *Kernel) Reboot() error {
	k.reap()
	k.bootMu.Lock()
	defer k.bootMu.Unlock()
	if k.isClosed() {
		return ErrKernelClosed
	}
	b := k.cur
	b.serialize.Lock() // requests in flight finish first
	k.cur = newBoot(k)
	k.faults.replaced(b, nil)
	b.dead.Store(true)
	b.serialize.Unlock()
	b.shutdown()
	if k.cfg.imageFile != "" {
		if err := os.Remove(k.cfg.imageFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fake: reboot: %w", err)
		}
	}
	return nil
}

// serializeSessions is luo_session_serialize plus the KHO write. On
// success it returns with b.serialize held for writing, as the kernel never
// releases it.
func (b *boot) serializeSessions() (*kho.Image, *KexecError) {
	b.serialize.Lock()
	b.outgoing.mu.Lock()
	defer b.outgoing.mu.Unlock()
	mem := kho.NewMemory()
	st := &kho.State{LiveupdateNum: b.liveupdateNum + 1, Sessions: make([]kho.SessionState, 0, len(b.outgoing.sessions))}
	// The session blocks the kernel grew (Linux 7.2), all of them
	// written, as luo_session_serialize fills the block set it has.
	st.SessionBlocks = b.outgoing.nblocks
	if err := b.k.faults.checkMatch(b.outgoing.sessions); err != nil {
		// The test's mistake, not the kernel's answer: it matches no
		// errno.
		b.serialize.Unlock()
		return nil, &KexecError{Err: err}
	}
	for i, s := range b.outgoing.sessions {
		ss, err := b.freezeSession(s, mem)
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				b.unfreezeSession(b.outgoing.sessions[j])
			}
			mem.Close()
			b.serialize.Unlock()
			err.Session = s.name
			return nil, err
		}
		st.Sessions = append(st.Sessions, ss)
	}
	root, err := kho.WriteLUO(mem, st)
	if err != nil {
		for j := len(b.outgoing.sessions) - 1; j >= 0; j-- {
			b.unfreezeSession(b.outgoing.sessions[j])
		}
		mem.Close()
		b.serialize.Unlock()
		return nil, &KexecError{Err: err}
	}
	return &kho.Image{Mem: mem, Root: root}, nil
}

// abortSerialize unfreezes after a failure past serializeSessions.
func (b *boot) abortSerialize() {
	b.outgoing.mu.Lock()
	for j := len(b.outgoing.sessions) - 1; j >= 0; j-- {
		b.unfreezeSession(b.outgoing.sessions[j])
	}
	b.outgoing.mu.Unlock()
	b.serialize.Unlock()
}

// freezeSession freezes s's files in order; its error names the file
// whose freeze failed, if any (the caller fills in the session).
func (b *boot) freezeSession(s *session, mem *kho.Memory) (kho.SessionState, *KexecError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.k.faults.freeze(s.name); err != nil {
		return kho.SessionState{}, &KexecError{Err: err}
	}
	ss := kho.SessionState{Name: s.name}
	if len(s.files) > 0 {
		ss.Files = make([]kho.FileSer, 0, len(s.files))
	}
	for i, f := range s.files {
		f.hf.Mem = mem
		f.hf.toFile = b.k.cfg.imageFile != ""
		if err := f.h.Freeze(&f.hf); err != nil {
			for j := 0; j < i; j++ {
				s.files[j].h.Unfreeze(&s.files[j].hf)
			}
			return kho.SessionState{}, &KexecError{File: true, Token: f.hf.Token, Err: err}
		}
		ss.Files = append(ss.Files, kho.FileSer{Compatible: f.h.Compatible(), Data: f.hf.Data, Token: f.hf.Token})
	}
	return ss, nil
}

func (b *boot) unfreezeSession(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.h.Unfreeze(&f.hf)
	}
}

// bootFrom starts the kernel that img hands over to. What the real kernel
// checks in its early initcall (the root and the session chain) is checked
// now, and fails as a PanicError; the rest is restored on the first open.
func bootFrom(k *Kernel, img *kho.Image) (*boot, error) {
	b := newBoot(k)
	if img == nil || img.Root == 0 {
		return b, nil
	}
	st, err := kho.ReadLUO(img.Mem, img.Root)
	if err != nil && isBootCheck(err) {
		return nil, &PanicError{Err: err}
	}
	if err != nil && isFLBError(err) && st != nil {
		// luo_flb_setup_incoming keeps the FLB area's address and
		// reads nothing; only handlers with FLBs look at it, and the
		// fake's have none.
		err = nil
	}
	b.in = &incomingState{img: img, st: st, err: err}
	b.inMem = img.Mem
	if st != nil {
		b.liveupdateNum = st.LiveupdateNum
	}
	return b, nil
}

// isBootCheck tells errors the kernel meets in its early initcall (the
// root, the session chain) from those of the first open (the files).
//
// The kernel restores the session block chain early (luo_session_setup_
// incoming) and panics when the root or that chain is bad; sessions'
// entries and their files are deserialized at the first open, whose
// failure is EIO.
func isBootCheck(err error) bool {
	var de *kho.DecodeError
	if errors.As(err, &de) {
		return strings.HasPrefix(de.Rule, "luo_ser") || strings.HasPrefix(de.Rule, "session block")
	}
	return true
}

// isFLBError tells an error of the FLB area, which ReadLUO decodes last.
func isFLBError(err error) bool {
	var de *kho.DecodeError
	return errors.As(err, &de) && strings.HasPrefix(de.Rule, "FLB")
}

// incomingState is what the previous kernel handed over, before the first
// open restores it.
type incomingState struct {
	img *kho.Image
	st  *kho.State
	err error // a decoding error of the files, seen at the first open
}

// restore is luo_session_deserialize: it rebuilds the incoming sessions.
func (b *boot) restore(in *incomingState) error {
	if err := b.k.faults.restore(); err != nil {
		return err
	}
	if in.err != nil {
		return in.err
	}
	b.incoming.mu.Lock()
	defer b.incoming.mu.Unlock()
	// The pages the kernel has restored once the sessions are
	// deserialized (luo_ser, the session blocks), then, as files are
	// retrieved and finished, theirs: each page once, across files.
	pages := &restoredPages{r: kho.NewRestorer(in.img.Mem)}
	fileBlocks := pages.r.RestoreLUO(in.img.Root)
	b.pages = pages
	b.incoming.sessions = slices.Grow(b.incoming.sessions, len(in.st.Sessions))
	for i, ss := range in.st.Sessions {
		s := &session{name: ss.Name}
		if len(ss.Files) > 0 {
			s.files = make([]*file, 0, len(ss.Files))
		}
		if i < len(fileBlocks) {
			s.fileBlocks = fileBlocks[i]
		}
		for _, fs := range ss.Files {
			h := b.k.handler(fs.Compatible)
			if h == nil {
				return fmt.Errorf("session %q token %#x: no handler %q: %w", ss.Name, fs.Token, fs.Compatible, unix.ENOENT)
			}
			hf := HandlerFile{Token: fs.Token, FD: -1, Mem: in.img.Mem, Data: fs.Data}
			if _, ok := h.(*memfdHandler); ok {
				hf.Private = &incomingMemfd{pages: pages}
			}
			s.files = append(s.files, &file{h: h, hf: hf})
		}
		b.incoming.sessions = append(b.incoming.sessions, s)
	}
	return nil
}

// restoreFileBlocks restores the file blocks of the incoming session s
// once its files are finished (kho_block_set_destroy in luo_file_finish),
// so no later retrieve can take them. Called with s.mu held.
func (b *boot) restoreFileBlocks(s *session) {
	if b.pages == nil || s.fileBlocks == 0 {
		return
	}
	b.pages.mu.Lock()
	b.pages.r.RestoreBlocks(s.fileBlocks)
	b.pages.mu.Unlock()
	s.fileBlocks = 0
}

// restoredPages is one boot's record of the preserved pages restored so
// far, shared by the files of every incoming session (retrieves of
// different sessions run concurrently).
type restoredPages struct {
	mu sync.Mutex
	r  *kho.Restorer
}

func writeImageFile(path string, img *kho.Image) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing image file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// readImageFile reads the image a Kexec wrote to path; nil, and no
// error, for an empty file, which holds no image yet (a test's
// os.CreateTemp, or a first stage that has not run).
func readImageFile(path string) (*kho.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, nil
	}
	return kho.ReadImage(f)
}
