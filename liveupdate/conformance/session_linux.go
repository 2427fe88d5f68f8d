//go:build linux

package conformance

import (
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func deviceCases() []testCase {
	return []testCase{
		{"exclusive_open_EBUSY", deviceExclusive},
		{"close_ends_exclusivity", deviceCloseEndsExclusivity},
		{"sessions_outlive_device_fd", deviceSessionsOutlive},
	}
}

func deviceExclusive(e *env) {
	d := e.open()
	e.create(d, e.name("excl"))
	for i := range 2 {
		d2, err := e.tgt.Open()
		if err == nil {
			d2.Close()
		}
		e.expect(err, unix.EBUSY, "open #%d while the device is held", i+2)
	}
	// The held device still works.
	e.create(d, e.name("excl2"))
}

func deviceCloseEndsExclusivity(e *env) {
	for i := range 3 {
		d, err := e.tgt.Open()
		e.mustExpect(err, 0, "open #%d after closing the previous one", i+1)
		e.mustExpect(d.Close(), 0, "close #%d", i+1)
	}
}

func deviceSessionsOutlive(e *env) {
	d, err := e.tgt.Open()
	e.mustExpect(err, 0, "open")
	name := e.name("outlive")
	s, err := d.CreateSession(name)
	e.mustExpect(err, 0, "create session")
	e.track(s)
	e.mustExpect(s.PreserveFD(fdOf(e.memfd("before")), 1), 0, "preserve before closing the device")
	e.mustExpect(d.Close(), 0, "close the device")
	e.expect(s.PreserveFD(fdOf(e.memfd("after")), 2), 0, "preserve after closing the device")
	if e.f.GetName {
		got, err := e.rawGetName(s)
		if e.expect(err, 0, "GET_NAME after closing the device") && got != name {
			e.Errorf("GET_NAME = %q, want %q", got, name)
		}
	}
	d2 := e.open()
	e.stillThere(d2, name, "when the device was closed")
	e.expect(s.PreserveFD(fdOf(e.memfd("reopened")), 3), 0, "preserve after reopening the device")
}

func createCases() []testCase {
	return []testCase{
		{"names_of_1_and_63_bytes_accepted", createNameLengths},
		{"name_holds_any_nonzero_bytes", createNameBytes},
		{"duplicate_outgoing_name_EEXIST", createDuplicate},
		{"name_both_outgoing_and_incoming", createOutgoingAndIncoming},
	}
}

func createNameLengths(e *env) {
	d := e.open()
	for _, name := range []string{"Z", strings.Repeat("m", liveupdate.MaxNameLen)} {
		s := e.create(d, name)
		if e.f.GetName {
			got, err := e.rawGetName(s)
			if e.expect(err, 0, "GET_NAME of a %d-byte name", len(name)) && got != name {
				e.Errorf("GET_NAME = %q, want %q", got, name)
			}
		}
		got, err := s.Name()
		if e.expect(err, 0, "Session.Name of a %d-byte name", len(name)) && got != name {
			e.Errorf("Session.Name = %q, want %q", got, name)
		}
	}
}

func createNameBytes(e *env) {
	d := e.open()
	name := e.name("a/b c\t\xff\u00e9")
	s := e.create(d, name)
	if e.f.GetName {
		got, err := e.rawGetName(s)
		if e.expect(err, 0, "GET_NAME") && got != name {
			e.Errorf("GET_NAME = %q, want %q", got, name)
		}
	}
	s2, err := d.CreateSession(name)
	if err == nil {
		e.track(s2)
	}
	e.expect(err, unix.EEXIST, "create %q again", name)
}

func createDuplicate(e *env) {
	d := e.open()
	name := e.name("dup")
	s := e.create(d, name)
	for range 2 {
		s2, err := d.CreateSession(name)
		if err == nil {
			e.track(s2)
		}
		e.expect(err, unix.EEXIST, "create %q while it exists", name)
	}
	// The failed creates left the first session alone.
	e.expect(s.PreserveFD(fdOf(e.memfd("x")), 7), 0, "preserve in the first session")
	e.stillThere(d, name, "by a failed create of the same name")
}

func createOutgoingAndIncoming(e *env) {
	name := e.name("both")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("incoming")), 1), 0, "preserve")
	}, func(d *liveupdate.Device) {
		out := e.create(d, name)
		e.expect(out.PreserveFD(fdOf(e.memfd("outgoing")), 1), 0, "preserve in the new outgoing session of the same name")
		in := e.retrieve(d, name)
		e.retrieveHolds(in, 1, "incoming", "retrieve the file of the incoming session")
		s2, err := d.CreateSession(name)
		if err == nil {
			e.track(s2)
		}
		e.expect(err, unix.EEXIST, "create %q a second time in this boot", name)
		e.expect(in.Finish(), 0, "finish the incoming session")
	})
}

func retrieveSessionCases() []testCase {
	return []testCase{
		{"unknown_name_ENOENT", retrieveUnknown},
		{"session_of_this_boot_ENOENT", retrieveThisBoot},
		{"once_EINVAL_while_listed_ENOENT_after_release", retrieveOnce},
		{"incoming_sessions_survive_device_reopen", retrieveAfterReopen},
	}
}

func retrieveUnknown(e *env) {
	d := e.open()
	s, err := d.RetrieveSession(e.name("unknown"))
	if err == nil {
		e.track(s)
	}
	e.expect(err, unix.ENOENT, "retrieve a session that does not exist")
}

func retrieveThisBoot(e *env) {
	d := e.open()
	name := e.name("thisboot")
	e.create(d, name)
	s, err := d.RetrieveSession(name)
	if err == nil {
		e.track(s)
	}
	e.expect(err, unix.ENOENT, "retrieve the outgoing session %q", name)
}

func retrieveOnce(e *env) {
	name := e.name("once")
	e.stages(func(d *liveupdate.Device) {
		e.create(d, name)
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		again := func(want unix.Errno, when string) {
			e.Helper()
			s, err := d.RetrieveSession(name)
			if err == nil {
				e.track(s)
			}
			e.expect(err, want, "retrieve %q again %s", name, when)
		}
		again(unix.EINVAL, "while it is retrieved")
		e.mustExpect(in.Finish(), 0, "finish")
		again(unix.EINVAL, "after finish, with its fd still open")
		e.mustExpect(in.Close(), 0, "close the incoming session")
		e.waitIncomingGone(d, name)
	})
}

func retrieveAfterReopen(e *env) {
	name := e.name("reopen")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("kept")), 5), 0, "preserve")
	}, func(d *liveupdate.Device) {
		e.mustExpect(d.Close(), 0, "close the new kernel's device")
		d = e.open()
		in := e.retrieve(d, name)
		f, err := in.Retrieve(5)
		if e.expect(err, 0, "retrieve the file") {
			e.own(f)
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func directionCases() []testCase {
	return []testCase{
		{"preserve_fd_on_incoming", directionPreserveIncoming},
		{"retrieve_fd_on_outgoing", directionRetrieveOutgoing},
		{"finish_on_outgoing", directionFinishOutgoing},
		{"get_name_on_outgoing", directionGetNameOutgoing},
		{"get_name_on_incoming", directionGetNameIncoming},
	}
}

func directionPreserveIncoming(e *env) {
	name := e.name("dir-in")
	e.stages(func(d *liveupdate.Device) {
		e.create(d, name)
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		if e.f.DirectionCheck {
			e.expect(in.PreserveFD(fdOf(e.memfd("x")), 1), unix.EINVAL, "PRESERVE_FD on an incoming session")
		} else {
			// Linux 6.19 runs the handler; with a descriptor that is not open it
			// fails in fget, harmlessly.
			e.expect(in.PreserveFD(e.badFD(), 1), unix.EBADF, "PRESERVE_FD of a closed fd on an incoming session (no direction check)")
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func directionRetrieveOutgoing(e *env) {
	d := e.open()
	s := e.create(d, e.name("dir-out"))
	f, err := s.Retrieve(1)
	if err == nil {
		e.own(f)
	}
	if e.f.DirectionCheck {
		e.expect(err, unix.EINVAL, "RETRIEVE_FD on an outgoing session")
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("x")), 1), 0, "preserve")
		f, err = s.Retrieve(1)
		if err == nil {
			e.own(f)
		}
		e.expect(err, unix.EINVAL, "RETRIEVE_FD of a preserved token on an outgoing session")
	} else {
		// Linux 6.19: an empty outgoing session has no such token.
		e.expect(err, unix.ENOENT, "RETRIEVE_FD on an empty outgoing session (no direction check)")
	}
}

func directionFinishOutgoing(e *env) {
	d := e.open()
	s := e.create(d, e.name("dir-fin"))
	if e.f.DirectionCheck {
		e.mustExpect(s.PreserveFD(fdOf(e.memfd("x")), 1), 0, "preserve")
		e.expect(s.Finish(), unix.EINVAL, "FINISH on an outgoing session")
		// The session and its file are untouched.
		e.expect(s.PreserveFD(fdOf(e.memfd("y")), 1), unix.EEXIST, "preserve under the token again after the refused FINISH")
	} else {
		// Linux 6.19: finishing an empty session finishes nothing.
		e.expect(s.Finish(), 0, "FINISH on an empty outgoing session (no direction check)")
	}
}

func directionGetNameOutgoing(e *env) {
	d := e.open()
	name := e.name("dir-gn")
	s := e.create(d, name)
	got, err := e.rawGetName(s)
	if !e.f.GetName {
		e.expect(err, unix.EINVAL, "GET_NAME on a target without it")
		return
	}
	if e.expect(err, 0, "GET_NAME on an outgoing session") && got != name {
		e.Errorf("GET_NAME = %q, want %q", got, name)
	}
}

func directionGetNameIncoming(e *env) {
	name := e.name("dir-gn-in")
	e.stages(func(d *liveupdate.Device) {
		e.create(d, name)
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		got, err := e.rawGetName(in)
		if !e.f.GetName {
			e.expect(err, unix.EINVAL, "GET_NAME on a target without it")
		} else if e.expect(err, 0, "GET_NAME on an incoming session") && got != name {
			e.Errorf("GET_NAME = %q, want %q", got, name)
		}
		got, err = in.Name()
		if e.expect(err, 0, "Session.Name of an incoming session") && got != name {
			e.Errorf("Session.Name = %q, want %q", got, name)
		}
		e.expect(in.Finish(), 0, "finish")
	})
}
