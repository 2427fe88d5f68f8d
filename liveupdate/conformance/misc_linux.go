//go:build linux

package conformance

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

func limitCases() []testCase {
	return []testCase{
		{"max_sessions", limitSessions},
		{"max_files_per_session", limitFiles},
	}
}

func limitSessions(e *env) {
	n := e.f.MaxSessions
	if n == 0 {
		e.Skip("no session limit within reach (Features.MaxSessions is 0)")
	}
	if e.f.MaxSessionsErrno == 0 {
		e.Fatal("Features.MaxSessions is set but MaxSessionsErrno is not")
	}
	if held := e.su.heldOutgoing(); held > 0 {
		// A split run keeps earlier cases' sessions for the next boot.
		e.Logf("%d outgoing sessions kept for the next boot count against the limit", held)
		n -= held
		if n < 1 {
			e.Skipf("the %d outgoing sessions kept for the next boot of the split run fill the limit of %d (Features.MaxSessions)", held, e.f.MaxSessions)
		}
	}
	e.needFDs(2 * uint64(n+1))
	d := e.open()
	sessions := make([]*liveupdate.Session, 0, n)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := range n {
		s, err := d.CreateSession(e.name("limit"))
		if err != nil {
			e.Fatalf("create session %d of the %d allowed: %v", i+1, n, err)
		}
		sessions = append(sessions, s)
	}
	s, err := d.CreateSession(e.name("over"))
	if err == nil {
		sessions = append(sessions, s)
	}
	e.expect(err, e.f.MaxSessionsErrno, "create session %d, past the limit", n+1)
	e.mustExpect(sessions[0].Close(), 0, "close one session")
	sessions = sessions[1:]
	e.eventually("create a session after one was closed at the limit", func() error {
		s, err := d.CreateSession(e.name("again"))
		if err == nil {
			sessions = append(sessions, s)
		}
		return err
	})
}

func limitFiles(e *env) {
	n := e.f.MaxFiles
	if n == 0 {
		e.Skip("no per-session file limit within reach (Features.MaxFiles is 0)")
	}
	e.needFDs(2 * uint64(n+8))
	d := e.open()
	s := e.create(d, e.name("files"))
	for i := range n {
		fd, err := unix.MemfdCreate("limit", unix.MFD_CLOEXEC)
		if err != nil {
			e.Fatalf("memfd_create: %v", err)
		}
		err = s.PreserveFD(fd, uint64(i))
		unix.Close(fd)
		if err != nil {
			e.Fatalf("preserve file %d of the %d allowed: %v", i+1, n, err)
		}
	}
	e.expect(s.PreserveFD(fdOf(e.memfd("over")), uint64(n)), unix.ENOSPC, "preserve file %d, past the limit", n+1)
	e.expect(s.PreserveFD(fdOf(e.memfd("over")), 0), unix.EEXIST, "preserve under a used token at the limit (token checked first)")
	e.expect(s.PreserveFD(e.badFD(), uint64(n)), unix.ENOSPC, "preserve a closed fd at the limit (count checked before the fd)")
	other := e.create(d, e.name("files2"))
	e.expect(other.PreserveFD(fdOf(e.memfd("other")), uint64(n)), 0, "preserve in another session while the first is full")
}

func fdCases() []testCase {
	return []testCase{
		{"session_fds_are_cloexec", fdsCloexec},
		{"incoming_session_and_retrieved_fds_are_cloexec", fdsIncomingCloexec},
		{"is_session", fdsIsSession},
		{"new_session_wraps_fd", fdsNewSession},
		{"new_session_rejects_other_fds", fdsNewSessionRejects},
		{"proc_link_holds_whole_name", fdsProcLink},
	}
}

func fdsCloexec(e *env) {
	d := e.open()
	e.cloexec(d.Fd(), "the device fd")
	s := e.create(d, e.name("cloexec"))
	e.cloexec(s.Fd(), "a created session fd")
	e.cloexec(e.rawCreate(d, e.name("rawcloexec")), "a session fd from raw CREATE_SESSION")
	w, err := liveupdate.NewSession(s.Fd())
	e.mustExpect(err, 0, "NewSession")
	e.track(w)
	e.cloexec(w.Fd(), "a NewSession copy")
}

func fdsIncomingCloexec(e *env) {
	name := e.name("incloexec")
	e.stages(func(d *liveupdate.Device) {
		s := e.create(d, name)
		e.mustExpect(s.PreserveFD(fdOf(e.memfdFlags("no cloexec before", 0)), 1), 0, "preserve a memfd without FD_CLOEXEC")
	}, func(d *liveupdate.Device) {
		in := e.retrieve(d, name)
		e.cloexec(in.Fd(), "a retrieved session fd")
		f, err := in.Retrieve(1)
		if e.expect(err, 0, "retrieve") {
			e.own(f)
			e.cloexec(fdOf(f), "a retrieved file")
		}
		if !liveupdate.IsSession(in.Fd()) {
			e.Errorf("IsSession is false for an incoming session fd")
		}
		if f != nil && liveupdate.IsSession(fdOf(f)) {
			e.Errorf("IsSession is true for a retrieved memfd")
		}
		e.expect(in.Finish(), 0, "finish")
	})
}

func fdsIsSession(e *env) {
	d := e.open()
	s := e.create(d, e.name("issession"))
	raw := e.rawCreate(d, e.name("israw"))
	w, err := liveupdate.NewSession(s.Fd())
	e.mustExpect(err, 0, "NewSession")
	e.track(w)
	for what, fd := range map[string]int{"a created session": s.Fd(), "a raw-created session": raw, "a NewSession copy": w.Fd()} {
		if !liveupdate.IsSession(fd) {
			e.Errorf("IsSession(%s) = false", what)
		}
	}
	others := map[string]int{"the device": d.Fd(), "a memfd": fdOf(e.memfd("x")), "fd -1": -1}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("socketpair: %v", err)
	}
	e.ownFD(sp[0])
	e.ownFD(sp[1])
	others["a seqpacket socket"] = sp[0]
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		e.Fatalf("pipe: %v", err)
	}
	e.ownFD(p[0])
	e.ownFD(p[1])
	others["a pipe"] = p[0]
	for what, fd := range others {
		if liveupdate.IsSession(fd) {
			e.Errorf("IsSession(%s) = true", what)
		}
	}
}

func fdsNewSession(e *env) {
	d := e.open()
	name := e.name("wrap")
	s := e.create(d, name)
	w, err := liveupdate.NewSession(s.Fd())
	e.mustExpect(err, 0, "NewSession")
	e.track(w)
	if w.Fd() == s.Fd() {
		e.Errorf("NewSession did not duplicate the fd")
	}
	got, err := w.Name()
	if e.expect(err, 0, "Name of the wrapped session") && got != name {
		e.Errorf("Name of the wrapped session = %q, want %q", got, name)
	}
	e.expect(w.PreserveFD(fdOf(e.memfd("through the copy")), 1), 0, "preserve through the wrapped session")
	e.expect(s.PreserveFD(fdOf(e.memfd("y")), 1), unix.EEXIST, "the token used through the copy, through the original")
	e.mustExpect(w.Close(), 0, "close the copy")
	e.expect(s.PreserveFD(fdOf(e.memfd("z")), 2), 0, "preserve through the original after closing the copy")
	e.stillThere(d, name, "when the NewSession copy was closed")
}

func fdsNewSessionRejects(e *env) {
	d := e.open()
	for what, fd := range map[string]int{"the device": d.Fd(), "a memfd": fdOf(e.memfd("x"))} {
		w, err := liveupdate.NewSession(fd)
		if err == nil {
			e.track(w)
			e.Errorf("NewSession(%s) succeeded", what)
		} else if !errors.Is(err, liveupdate.ErrNotSession) {
			e.Errorf("NewSession(%s): %v, want ErrNotSession", what, err)
		}
	}
}

func socketCases() []testCase {
	return []testCase{
		{"session_passes_through_unix_socket", socketPass},
		{"session_in_flight_stays_alive", socketInFlight},
	}
}

// socketPair returns a connected pair of unix stream sockets.
func (e *env) socketPair() [2]int {
	e.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.Fatalf("socketpair: %v", err)
	}
	e.ownFD(sp[0])
	e.ownFD(sp[1])
	return [2]int{sp[0], sp[1]}
}

// sendFD sends a copy of fd over sock as SCM_RIGHTS.
func (e *env) sendFD(sock, fd int) {
	e.Helper()
	if err := unix.Sendmsg(sock, []byte{'s'}, unix.UnixRights(fd), nil, 0); err != nil {
		e.Fatalf("sendmsg SCM_RIGHTS: %v", err)
	}
}

// recvFD receives one fd from sock (closed when the case ends).
func (e *env) recvFD(sock int) int {
	e.Helper()
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		e.Fatalf("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		e.Fatalf("no control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		e.Fatalf("no SCM_RIGHTS fd (%v)", err)
	}
	e.ownFD(fds[0])
	return fds[0]
}

func socketPass(e *env) {
	d := e.open()
	name := e.name("socket")
	s := e.create(d, name)
	sp := e.socketPair()
	e.sendFD(sp[0], s.Fd())
	got := e.recvFD(sp[1])
	if !liveupdate.IsSession(got) {
		e.Fatalf("the received fd is not a session")
	}
	w, err := liveupdate.NewSession(got)
	e.mustExpect(err, 0, "NewSession of the received fd")
	e.track(w)
	n, err := w.Name()
	if e.expect(err, 0, "Name of the received session") && n != name {
		e.Errorf("Name of the received session = %q, want %q", n, name)
	}
	e.expect(w.PreserveFD(fdOf(e.memfd("via socket")), 5), 0, "preserve through the received session")
	e.expect(s.PreserveFD(fdOf(e.memfd("y")), 5), unix.EEXIST, "the token used through the received copy, through the original")
}

func socketInFlight(e *env) {
	d := e.open()
	name := e.name("inflight")
	s := e.create(d, name)
	m := e.memfd("in flight")
	e.mustExpect(s.PreserveFD(fdOf(m), 1), 0, "preserve")
	sp := e.socketPair()
	e.sendFD(sp[0], s.Fd())
	e.mustExpect(s.Close(), 0, "close our only copy while another is in flight")
	e.stillPreserved(d, name, m, "while its only copy is in flight in a socket")
	got := e.recvFD(sp[1])
	w, err := liveupdate.NewSession(got)
	e.mustExpect(err, 0, "NewSession of the received fd")
	e.track(w)
	e.expect(w.PreserveFD(fdOf(e.memfd("z")), 1), unix.EEXIST, "the token preserved before the trip")
	e.expect(w.PreserveFD(fdOf(e.memfd("z")), 2), 0, "preserve after the trip")
}

// fdsProcLink: a session fd's /proc/self/fd link is "anon_inode:" then
// the file name luo_session_getfile gives, "[luo_session] NAME", whole:
// spaces kept, 63 bytes not cut. NewSession reads the name from it.
func fdsProcLink(e *env) {
	d := e.open()
	base := e.name("link with  spaces ")
	full := base + strings.Repeat("z", liveupdate.MaxNameLen-len(base))
	for _, name := range []string{base, full} {
		s := e.create(d, name)
		link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(s.Fd()))
		if err != nil {
			e.Fatalf("readlink: %v", err)
		}
		if !strings.HasPrefix(link, "anon_inode:") {
			e.Skip("the target's session fds are not anonymous inodes (a fake kernel's are sockets, named by their bound address): " + link)
		}
		if want := "anon_inode:[luo_session] " + name; link != want {
			e.Errorf("session fd's link is %q, want %q", link, want)
		}
		w, err := liveupdate.NewSession(s.Fd())
		if e.expect(err, 0, "NewSession") {
			e.track(w)
			if want := "luo session " + strconv.Quote(name); w.String() != want {
				e.Errorf("NewSession read the name as %s, want %s", w.String(), want)
			}
		}
	}
}
