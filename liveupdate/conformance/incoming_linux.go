//go:build linux

package conformance

import (
	"io"
	"math/rand/v2"
	"strconv"
	"syscall"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// The cases here need incoming sessions, so a Target that can Kexec.

func retrieveFDCases() []testCase {
	return []testCase{
		{"by_token_contents_and_size_survive", retrieveContents},
		{"memfd_closed_after_preserve_survives", retrieveClosedMemfd},
		{"position_survives", retrievePosition},
		{"unknown_token_ENOENT_every_time", retrieveUnknownToken},
		{"second_retrieve_new_fd_same_file", retrieveTwice},
		{"retrieved_file_is_read_write", retrieveReadWrite},
		{"failed_retrieve_fails_the_same_way_again", retrieveSticky},
		{"write_only_reopen_preserved_and_carried", retrieveWriteOnly},
	}
}

func retrieveContents(e *env) {
	name := e.name("contents")
	big := make([]byte, 3*4096+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	dense := map[uint64]string{
		0:                     "",
		1:                     "alpha",
		0xFFFF_FFFF_FFFF_FFFF: string(big),
	}
	sparse := string(make([]byte, 1<<20-3)) + "end" // token 2
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		for tok, data := range dense {
			e.mustExpect(s.PreserveFD(fdOf(e.memfd(data)), tok), 0, "preserve token 0x%x", tok)
		}
		m := e.memfd("")
		if err := m.Truncate(1 << 20); err != nil {
			e.Fatalf("ftruncate: %v", err)
		}
		if _, err := m.WriteAt([]byte("end"), 1<<20-3); err != nil {
			e.Fatalf("write: %v", err)
		}
		e.mustExpect(s.PreserveFD(fdOf(m), 2), 0, "preserve a sparse memfd")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		for _, tok := range []uint64{0, 1, 2, 0xFFFF_FFFF_FFFF_FFFF} {
			f, err := in.Retrieve(tok)
			if !e.expect(err, 0, "retrieve token 0x%x", tok) {
				continue
			}
			e.own(f)
			want := dense[tok]
			if tok == 2 {
				want = sparse
			}
			if got := e.contents(f); got != want {
				e.Errorf("token 0x%x: retrieved %d bytes, want %d (contents differ)", tok, len(got), len(want))
			}
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func retrieveClosedMemfd(e *env) {
	name := e.name("closedmemfd")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		m := e.memfd("only the session holds me")
		e.mustExpect(s.PreserveFD(fdOf(m), 0x1A), 0, "preserve")
		e.mustExpect(m.Close(), 0, "close the memfd")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		e.retrieveHolds(in, 0x1A, "only the session holds me", "retrieve")
		e.expect(in.Finish(), 0, "finish")
	})
}

// retrieveWriteOnly: the memfd handler reads the pages itself, so an
// O_WRONLY open of a memfd is preserved and carried like any other; the
// retrieved file is O_RDWR (memfd_luo_retrieve makes a new file).
func retrieveWriteOnly(e *env) {
	name := e.name("wronly")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		m := e.memfd("written through a write-only fd")
		fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fdOf(m)), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			e.Fatalf("reopen the memfd O_WRONLY through /proc/self/fd: %v", err)
		}
		e.ownFD(fd)
		e.mustExpect(m.Close(), 0, "close the read-write memfd")
		e.mustExpect(s.PreserveFD(fd, 7), 0, "preserve the write-only fd")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		e.retrieveHolds(in, 7, "written through a write-only fd", "retrieve")
		e.expect(in.Finish(), 0, "finish")
	})
}

func retrievePosition(e *env) {
	name := e.name("pos")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		m := e.memfd("0123456789")
		e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
		if _, err := m.Seek(3, io.SeekStart); err != nil {
			e.Fatalf("seek: %v", err)
		}
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		f, err := in.Retrieve(1)
		if e.expect(err, 0, "retrieve") {
			e.own(f)
			pos, err := f.Seek(0, io.SeekCurrent)
			if err != nil || pos != 3 {
				e.Errorf("retrieved file's position is %d (%v), want 3, the position at the kexec", pos, err)
			}
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func retrieveUnknownToken(e *env) {
	name := e.name("unknowntok")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("x")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		for i := range 3 {
			f, err := in.Retrieve(2)
			if err == nil {
				e.own(f)
			}
			e.expect(err, unix.ENOENT, "retrieve an unknown token, attempt %d", i+1)
		}
		f, err := in.Retrieve(1)
		if e.expect(err, 0, "retrieve the known token after the failures") {
			e.own(f)
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func retrieveTwice(e *env) {
	name := e.name("twice")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("shared offset")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		f1, err := in.Retrieve(1)
		e.mustExpect(err, 0, "first retrieve")
		e.own(f1)
		f2, err := in.Retrieve(1)
		e.mustExpect(err, 0, "second retrieve")
		e.own(f2)
		if fdOf(f1) == fdOf(f2) {
			e.Errorf("both retrieves returned fd %d, want a new fd", fdOf(f1))
		}
		if !e.sameFile(fdOf(f1), fdOf(f2)) {
			e.Errorf("the two retrieved fds are different inodes, want the same file")
		}
		if _, err := f1.Seek(0, io.SeekStart); err != nil {
			e.Fatalf("seek: %v", err)
		}
		b := make([]byte, 6)
		if _, err := io.ReadFull(f1, b); err != nil {
			e.Fatalf("read: %v", err)
		}
		if pos, err := f2.Seek(0, io.SeekCurrent); err != nil || pos != 6 {
			e.Errorf("after reading 6 bytes through the first fd the second is at %d (%v), want 6 (one open file, shared offset)", pos, err)
		}
		if _, err := f1.WriteAt([]byte("SHARED"), 0); err != nil {
			e.Fatalf("write: %v", err)
		}
		if got := e.contents(f2); got != "SHARED offset" {
			e.Errorf("second fd reads %q after a write through the first", got)
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func retrieveReadWrite(e *env) {
	name := e.name("rw")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("before")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		f, err := in.Retrieve(1)
		e.mustExpect(err, 0, "retrieve")
		e.own(f)
		flags, err := unix.FcntlInt(uintptr(fdOf(f)), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_ACCMODE != unix.O_RDWR {
			e.Errorf("retrieved file's access mode is 0x%x (%v), want O_RDWR", flags&unix.O_ACCMODE, err)
		}
		if _, err := f.WriteAt([]byte("AFTER!"), 0); err != nil {
			e.Errorf("write to the retrieved file: %v", err)
		}
		e.expect(in.Finish(), 0, "finish")
		if got := e.contents(f); got != "AFTER!" {
			e.Errorf("retrieved file holds %q after finish, want %q", got, "AFTER!")
		}
		e.expect(in.Close(), 0, "close the incoming session")
		if _, err := f.WriteAt([]byte("closed"), 0); err != nil {
			e.Errorf("write to the retrieved file after its session was closed: %v", err)
		}
	})
}

func retrieveSticky(e *env) {
	e.needKexec()
	if e.tgt.FailRetrieve == nil {
		e.Skip("target cannot make a file's retrieve fail (Target.FailRetrieve is nil)")
	}
	name := e.name("sticky")
	const errno = syscall.ENOMEM
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("broken")), 1), 0, "preserve token 1")
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("fine")), 2), 0, "preserve token 2")
	}, func(d *liveupdate.Device) {
		e.mustExpect(e.tgt.FailRetrieve(name, 1, errno), 0, "arm the retrieve fault")
		in := e.retrieve(d, name)
		attempts := 1
		if e.f.StickyRetrieveErrors {
			attempts = 3
		}
		for i := range attempts {
			f, err := in.Retrieve(1)
			if err == nil {
				e.own(f)
			}
			e.expect(err, errno, "retrieve the failing file, attempt %d", i+1)
		}
		e.retrieveHolds(in, 2, "fine", "retrieve the other file")
		e.expect(in.Finish(), 0, "finish")
	})
}

func finishCases() []testCase {
	return []testCase{
		{"destroys_unretrieved_files_and_repeats", finishDestroys},
		{"reserved", finishReserved},
		{"empty_session", finishEmpty},
		{"closing_incoming_session_finishes_it", finishByClose},
	}
}

func finishDestroys(e *env) {
	name := e.name("finish")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("taken")), 1), 0, "preserve token 1")
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("left")), 2), 0, "preserve token 2")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		f, err := in.Retrieve(1)
		e.mustExpect(err, 0, "retrieve token 1")
		e.own(f)
		e.mustExpect(in.Finish(), 0, "finish")
		for _, tok := range []uint64{2, 1} {
			g, err := in.Retrieve(tok)
			if err == nil {
				e.own(g)
			}
			e.expect(err, unix.ENOENT, "retrieve token %d after finish", tok)
		}
		e.expect(in.Finish(), 0, "finish again")
		if got := e.contents(f); got != "taken" {
			e.Errorf("the file retrieved before finish holds %q", got)
		}
		got, err := in.Name()
		if e.expect(err, 0, "Session.Name after finish") && got != name {
			e.Errorf("Session.Name = %q, want %q", got, name)
		}
	})
}

func finishReserved(e *env) {
	name := e.name("finres")
	e.stages(func(d *liveupdate.Device) {
		e.create(d, name)
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		b := e.args(8, 8)
		native.PutUint32(b[4:], 0xdead)
		if e.f.FinishReservedChecked {
			e.expect(in.RawIoctl(liveupdate.CmdFinish.Request(), b), unix.EINVAL, "FINISH with reserved 0xdead")
		} else {
			e.expect(in.RawIoctl(liveupdate.CmdFinish.Request(), b), 0, "FINISH with reserved 0xdead (not checked)")
		}
		junk := e.args(16, 16)
		junk[15] = 1
		e.expect(in.RawIoctl(liveupdate.CmdFinish.Request(), junk), unix.E2BIG, "FINISH of size 16 with junk after the struct")
		e.expect(in.RawIoctl(liveupdate.CmdFinish.Request(), e.args(8, 7)), unix.EINVAL, "FINISH with size 7")
		e.expect(in.RawIoctl(liveupdate.CmdFinish.Request(), e.args(16, 16)), 0, "FINISH of size 16, zero past the struct")
	})
}

func finishEmpty(e *env) {
	name := e.name("finempty")
	e.stages(func(d *liveupdate.Device) {
		e.create(d, name)
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		e.expect(in.Finish(), 0, "finish an incoming session without files")
		f, err := in.Retrieve(0)
		if err == nil {
			e.own(f)
		}
		e.expect(err, unix.ENOENT, "retrieve from an empty session")
	})
}

func finishByClose(e *env) {
	name := e.name("finclose")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("dropped")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		e.mustExpect(in.Close(), 0, "close the incoming session without finishing it")
		e.waitIncomingGone(d, name)
	})
}

func kexecCases() []testCase {
	return []testCase{
		{"old_handles_fail_new_device_opens", kexecOldHandles},
		{"only_open_outgoing_sessions_are_carried", kexecCarried},
		{"incoming_sessions_are_not_carried_again", kexecNotCarriedAgain},
		{"many_sessions_and_files", kexecMany},
		{"size_change_fails_kexec", kexecSizeChange},
	}
}

func kexecSizeChange(e *env) {
	e.needKexec()
	if e.f.SizeFreezeEnforced {
		e.Skip("the target freezes preserved memfds (Features.SizeFreezeEnforced): their size cannot change")
	}
	if !e.f.SizeChangeFailsKexec {
		e.Skip("the target neither freezes preserved memfds nor checks them at kexec (Features.SizeChangeFailsKexec)")
	}
	name := e.name("resized")
	if e.tgt.Split != nil {
		kexecSizeChangeSplit(e, name)
		return
	}
	d := e.open()
	s := e.create(d, name)
	m := e.memfd("0123456789")
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	e.mustExpect(s.PreserveFD(fdOf(e.memfd("other")), 2), 0, "preserve another file")
	if err := m.Truncate(4096); err != nil {
		e.Fatalf("grow the preserved memfd: %v", err)
	}
	err := e.tgt.Kexec()
	e.mustExpect(err, unix.EPERM, "kexec with a preserved memfd whose size changed")
	// The kernel keeps running with every session as it was.
	e.stillThere(d, name, "by a failed kexec")
	e.expect(s.PreserveFD(fdOf(e.memfd("y")), 1), unix.EEXIST, "preserve under a token the failed kexec should have left alone")
	e.expect(s.PreserveFD(fdOf(e.memfd("z")), 3), 0, "preserve after the failed kexec")
	if err := m.Truncate(10); err != nil {
		e.Fatalf("shrink the memfd back: %v", err)
	}
	e.kexec()
	d = e.open()
	in := e.retrieve(d, name)
	e.retrieveHolds(in, 1, "0123456789", "retrieve after the second kexec")
	e.expect(in.Finish(), 0, "finish")
}

// kexecSizeChangeSplit is kexecSizeChange where each live update is a
// real kexec: one that fails would stop the whole chain, and the retry is
// another kexec of the same process. It checks what a split run can: a
// preserved memfd whose size changed and was put back before the kexec is
// carried with its contents.
func kexecSizeChangeSplit(e *env, name string) {
	e.Log("split run: the failing kexec and its retry need an in-process Kexec; checking that a size change undone before the kexec does not fail it")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		m := e.memfd("0123456789")
		e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("other")), 2), 0, "preserve another file")
		if err := m.Truncate(4096); err != nil {
			e.Fatalf("grow the preserved memfd: %v", err)
		}
		if err := m.Truncate(10); err != nil {
			e.Fatalf("shrink the memfd back: %v", err)
		}
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		for tok, want := range map[uint64]string{1: "0123456789", 2: "other"} {
			e.retrieveHolds(in, tok, want, "retrieve token %d", tok)
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func kexecOldHandles(e *env) {
	e.needKexec()
	name := e.name("old")
	if e.tgt.Split != nil {
		kexecOldHandlesSplit(e, name)
		return
	}
	d := e.open()
	s := e.create(d, name)
	e.mustExpect(s.PreserveFD(fdOf(e.memfd("x")), 1), 0, "preserve")
	if err := e.tgt.Kexec(); err != nil {
		e.Fatalf("kexec with the device open: %v", err)
	}
	err := e.withTimeout("create on the old kernel's device", func() error {
		s2, err := d.CreateSession(e.name("late"))
		if err == nil {
			s2.Close()
		}
		return err
	})
	if err == nil {
		e.Errorf("create on the old kernel's device after kexec succeeded")
	}
	err = e.withTimeout("preserve on the old kernel's session", func() error { return s.PreserveFD(fdOf(e.memfd("y")), 2) })
	if err == nil {
		e.Errorf("preserve on the old kernel's session after kexec succeeded")
	}
	// The old device is still open in this process; the new kernel's is
	// free.
	d2 := e.open()
	in := e.retrieve(d2, name)
	f, err := in.Retrieve(1)
	if e.expect(err, 0, "retrieve from the new kernel") {
		e.own(f)
	}
	g, err := in.Retrieve(2)
	if err == nil {
		e.own(g)
	}
	e.expect(err, unix.ENOENT, "retrieve the token the old session refused after kexec")
	e.expect(in.Finish(), 0, "finish")
}

// kexecOldHandlesSplit is kexecOldHandles where each live update is a
// real kexec: the old kernel's handles die with its process, so what is
// left to check is that the session preserved before the kexec is there in
// the next boot with its file, and nothing else.
func kexecOldHandlesSplit(e *env, name string) {
	e.Log("split run: the old kernel's handles end with its process; checking the new kernel's side")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("x")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		f, err := in.Retrieve(1)
		if e.expect(err, 0, "retrieve from the new kernel") && e.contents(e.own(f)) != "x" {
			e.Errorf("retrieved file does not hold %q", "x")
		}
		g, err := in.Retrieve(2)
		if err == nil {
			e.own(g)
		}
		e.expect(err, unix.ENOENT, "retrieve a token never preserved")
		e.expect(in.Finish(), 0, "finish")
	})
}

func kexecCarried(e *env) {
	kept, closed, empty := e.name("kept"), e.name("closed"), e.name("empty")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, kept)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("kept")), 1), 0, "preserve")
		c := e.create(d, closed)
		e.mustExpect(c.PreserveFD(fdOf(e.memfd("closed")), 1), 0, "preserve")
		e.mustExpect(c.Close(), 0, "close a session before the kexec")
		e.create(d, empty)
		// No waiting: once close returns, the kernel has released the
		// session (its final fput runs before close returns to user
		// space), so a kexec right after it must not carry it.
	}, func(d *liveupdate.Device) {
		s, err := d.RetrieveSession(closed)
		if err == nil {
			e.track(s)
		}
		e.expect(err, unix.ENOENT, "retrieve the session closed before the kexec")
		for _, name := range []string{kept, empty} {
			in := e.retrieve(d, name)
			e.expect(in.Finish(), 0, "finish %q", name)
		}
	})
}

func kexecNotCarriedAgain(e *env) {
	unretrieved, retrieved := e.name("unretr"), e.name("retr")
	e.stages(func(d *liveupdate.Device) {
		for _, name := range []string{unretrieved, retrieved} {
			s := e.create(d, name)
			e.mustExpect(s.PreserveFD(fdOf(e.memfd(name)), 1), 0, "preserve")
		}
	}, func(d *liveupdate.Device) {
		e.retrieve(d, retrieved) // retrieved, not finished, open at the next kexec
	}, func(d *liveupdate.Device) {
		for _, name := range []string{unretrieved, retrieved} {
			s, err := d.RetrieveSession(name)
			if err == nil {
				e.track(s)
			}
			e.expect(err, unix.ENOENT, "retrieve %q, an incoming session of the previous kernel, after a second kexec", name)
		}
	})
}

func kexecMany(e *env) {
	sessions, files := 50, 20
	if m := e.f.MaxSessions; m > 0 {
		sessions = min(sessions, m)
	}
	if m := e.f.MaxFiles; m > 0 {
		files = min(files, m)
	}
	e.needFDs(uint64(4 * sessions * files))
	names := make([]string, sessions)
	for i := range names {
		names[i] = e.name("many")
	}
	e.stages(func(d *liveupdate.Device) {
		for i := range names {
			s := e.create(d, names[i])
			for j := range files {
				m := e.memfd(names[i] + "/" + string(rune('a'+j)))
				e.mustExpect(s.PreserveFD(fdOf(m), uint64(j)), 0, "preserve")
				m.Close()
			}
		}
	}, func(d *liveupdate.Device) {
		for i, name := range names {
			in := e.retrieve(d, name)
			for j := range files {
				f, err := in.Retrieve(uint64(j))
				if !e.expect(err, 0, "session %d: retrieve token %d", i, j) {
					continue
				}
				got := e.contents(f)
				f.Close()
				if want := name + "/" + string(rune('a'+j)); got != want {
					e.Errorf("session %d token %d holds %q, want %q", i, j, got, want)
				}
			}
			e.expect(in.Finish(), 0, "finish")
			e.expect(in.Close(), 0, "close")
		}
	})
}
