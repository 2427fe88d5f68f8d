//go:build linux

package conformance

import (
	"fmt"
	"strings"

	"github.com/go-luo/luo/internal/luoabi"
	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// The dispatch cases send hand-built requests with RawIoctl and check the
// order of the kernel's checks (luo_ioctl in kernel/liveupdate/luo_core.c
// for the device, luo_session_ioctl in luo_session.c for sessions): nr range (EINVAL, before the argument is read), reading the
// size field (EFAULT), the exact request word (ENOTTY), the session's
// direction (EINVAL), size < min_size (EINVAL), copying the struct (E2BIG
// for non-zero bytes past it, EFAULT), then the handler. Each pair of
// checks is tested with a request that fails both, so that the errno tells
// which ran first. Argument buffers end at an inaccessible page, so reading
// past them faults on the kernel as it does on a fake.

func deviceDispatchCases() []testCase {
	return []testCase{
		{"nr_out_of_range_EINVAL_before_reading_arg", devDispatchNrRange},
		{"unreadable_size_EFAULT", devDispatchUnreadable},
		{"wrong_encoding_ENOTTY", devDispatchWrongEncoding},
		{"encoding_checked_after_reading_size", devDispatchEncodingAfterRead},
		{"encoding_checked_before_size", devDispatchEncodingBeforeSize},
		{"size_below_min_EINVAL", devDispatchSizeBelowMin},
		{"size_checked_before_copy", devDispatchSizeBeforeCopy},
		{"size_beyond_readable_EFAULT", devDispatchSizeBeyondBuffer},
		{"trailing_nonzero_E2BIG", devDispatchTrailingNonzero},
		{"copy_checked_before_handler", devDispatchCopyBeforeHandler},
		{"trailing_zero_accepted", devDispatchTrailingZero},
	}
}

// devRaw sends a request to d, closing any session fd a success returns.
func (e *env) devRaw(d *liveupdate.Device, req uint32, b []byte) error {
	e.Helper()
	err := d.RawIoctl(req, b)
	if err == nil && len(b) >= 8 {
		if fd := int(int32(native.Uint32(b[4:]))); fd >= 0 {
			e.ownFD(fd)
		}
	}
	return err
}

// checkNotCreated checks that no session name was created by a refused
// request.
func (e *env) checkNotCreated(d *liveupdate.Device, name string) {
	e.Helper()
	s, err := d.CreateSession(name)
	if err != nil {
		e.Errorf("create %q after refused raw requests: %v (a refused request created it?)", name, err)
		return
	}
	s.Close()
}

func devDispatchNrRange(e *env) {
	d := e.open()
	for _, nr := range []uint8{0x02, 0x03, 0x3f, 0x40, 0x43, 0xff} {
		req := luoabi.NativeIOC.IO(liveupdate.IoctlType, nr)
		e.expect(e.devRaw(d, req, nil), unix.EINVAL, "device nr 0x%02x with no argument", nr)
		b := e.sessionArgs(72, 72, []byte(e.name("nr")+"\x00"))
		e.expect(e.devRaw(d, req, b), unix.EINVAL, "device nr 0x%02x with a well-formed argument", nr)
	}
}

func devDispatchUnreadable(e *env) {
	d := e.open()
	for _, c := range []liveupdate.Command{liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession} {
		e.expect(e.devRaw(d, c.Request(), nil), unix.EFAULT, "%v with a NULL argument", c)
		for _, n := range []int{0, 2, 3} {
			e.expect(e.devRaw(d, c.Request(), e.buf(n)), unix.EFAULT, "%v with %d readable bytes", c, n)
		}
	}
}

func devDispatchWrongEncoding(e *env) {
	d := e.open()
	name := e.name("enc")
	for _, c := range []liveupdate.Command{liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession} {
		enc := wrongEncodings(c)
		for _, k := range sortedKeys(enc) {
			b := e.sessionArgs(72, 72, []byte(name+"\x00"))
			e.expect(e.devRaw(d, enc[k], b), unix.ENOTTY, "%v as 0x%08x (%s)", c, enc[k], k)
		}
	}
	e.checkNotCreated(d, name)
}

func devDispatchEncodingAfterRead(e *env) {
	d := e.open()
	enc := wrongEncodings(liveupdate.CmdCreateSession)
	for _, k := range sortedKeys(enc) {
		e.expect(e.devRaw(d, enc[k], nil), unix.EFAULT, "CREATE_SESSION as 0x%08x (%s) with a NULL argument", enc[k], k)
	}
}

func devDispatchEncodingBeforeSize(e *env) {
	d := e.open()
	enc := wrongEncodings(liveupdate.CmdCreateSession)
	for _, k := range sortedKeys(enc) {
		e.expect(e.devRaw(d, enc[k], e.args(8, 8)), unix.ENOTTY, "CREATE_SESSION as 0x%08x (%s) with size 8", enc[k], k)
	}
}

func devDispatchSizeBelowMin(e *env) {
	d := e.open()
	name := e.name("small")
	for _, c := range []liveupdate.Command{liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession} {
		for _, size := range []uint32{0, 4, 8, 71} {
			b := e.sessionArgs(72, size, []byte(name+"\x00"))
			e.expect(e.devRaw(d, c.Request(), b), unix.EINVAL, "%v with size %d", c, size)
		}
	}
	e.checkNotCreated(d, name)
}

func devDispatchSizeBeforeCopy(e *env) {
	d := e.open()
	// Only the size field is readable: a copy would fault.
	e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), e.args(4, 71)), unix.EINVAL,
		"CREATE_SESSION with size 71 and only 4 readable bytes")
}

func devDispatchSizeBeyondBuffer(e *env) {
	d := e.open()
	name := e.name("fault")
	e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), e.sessionArgs(71, 72, []byte(name))), unix.EFAULT,
		"CREATE_SESSION with size 72 and 71 readable bytes")
	e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), e.sessionArgs(72, 80, []byte(name+"\x00"))), unix.EFAULT,
		"CREATE_SESSION with size 80 and 72 readable bytes")
	e.checkNotCreated(d, name)
}

func devDispatchTrailingNonzero(e *env) {
	d := e.open()
	name := e.name("junk")
	for _, at := range []int{72, 79} {
		b := e.sessionArgs(80, 80, []byte(name+"\x00"))
		b[at] = 1
		e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), b), unix.E2BIG, "CREATE_SESSION of size 80 with byte %d set", at)
	}
	b := e.sessionArgs(4096, 4096, []byte(name+"\x00"))
	b[4095] = 0xff
	e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), b), unix.E2BIG, "CREATE_SESSION of size 4096 with its last byte set")
	e.checkNotCreated(d, name)
}

func devDispatchCopyBeforeHandler(e *env) {
	d := e.open()
	existing := e.name("exists")
	e.create(d, existing)
	for _, c := range []struct {
		cmd  liveupdate.Command
		name []byte
		what string
	}{
		{liveupdate.CmdCreateSession, nil, "an empty name"},
		{liveupdate.CmdCreateSession, []byte(strings.Repeat("X", 64)), "a name without NUL"},
		{liveupdate.CmdCreateSession, []byte(existing + "\x00"), "an existing name"},
		{liveupdate.CmdRetrieveSession, []byte(e.name("unknown") + "\x00"), "an unknown name"},
	} {
		b := e.sessionArgs(80, 80, c.name)
		b[79] = 1
		e.expect(e.devRaw(d, c.cmd.Request(), b), unix.E2BIG, "%v of size 80 with junk after the struct and %s", c.cmd, c.what)
	}
}

func devDispatchTrailingZero(e *env) {
	d := e.open()
	for _, n := range []int{80, 4096} {
		name := e.name(fmt.Sprintf("zero%d", n))
		b := e.sessionArgs(n, uint32(n), []byte(name+"\x00"))
		if !e.expect(e.devRaw(d, liveupdate.CmdCreateSession.Request(), b), 0, "CREATE_SESSION of size %d, zero past the struct", n) {
			continue
		}
		fd := int(int32(native.Uint32(b[4:])))
		if !liveupdate.IsSession(fd) {
			e.Errorf("CREATE_SESSION of size %d returned fd %d, which is not a session", n, fd)
		}
		for i, c := range b[72:] {
			if c != 0 {
				e.Errorf("CREATE_SESSION of size %d wrote byte %d past its struct (0x%02x)", n, 72+i, c)
				break
			}
		}
		e.stillThere(d, name, "right after its creation")
	}
	b := e.sessionArgs(80, 80, []byte(e.name("unknown")+"\x00"))
	e.expect(e.devRaw(d, liveupdate.CmdRetrieveSession.Request(), b), unix.ENOENT, "RETRIEVE_SESSION of size 80 of an unknown name")
}

func sessionDispatchCases() []testCase {
	return []testCase{
		{"nr_out_of_range_EINVAL_before_reading_arg", sesDispatchNrRange},
		{"unreadable_size_EFAULT", sesDispatchUnreadable},
		{"wrong_encoding_ENOTTY", sesDispatchWrongEncoding},
		{"encoding_checked_after_reading_size", sesDispatchEncodingAfterRead},
		{"encoding_checked_before_direction", sesDispatchEncodingBeforeDirection},
		{"encoding_checked_before_size", sesDispatchEncodingBeforeSize},
		{"direction_checked_before_size_and_copy", sesDispatchDirectionBeforeSize},
		{"size_below_min_EINVAL", sesDispatchSizeBelowMin},
		{"size_checked_before_copy", sesDispatchSizeBeforeCopy},
		{"size_beyond_readable_EFAULT", sesDispatchSizeBeyondBuffer},
		{"trailing_nonzero_E2BIG_before_handler", sesDispatchTrailingNonzero},
		{"trailing_zero_accepted", sesDispatchTrailingZero},
		{"get_name_reserved_EINVAL", sesDispatchGetNameReserved},
		{"get_name_reply", sesDispatchGetNameReply},
		{"get_name_struct_layout", sesDispatchGetNameLayout},
		{"get_name_missing_EINVAL", sesDispatchGetNameMissing},
	}
}

// outgoing opens the device and creates an outgoing session.
func (e *env) outgoing(tag string) (*liveupdate.Device, *liveupdate.Session) {
	e.Helper()
	d := e.open()
	return d, e.create(d, e.name(tag))
}

// checkPreservable checks that m, refused by raw requests, was not
// preserved: it can be preserved in s under token now.
func (e *env) checkPreservable(s *liveupdate.Session, m int, token uint64) {
	e.Helper()
	e.expect(s.PreserveFD(m, token), 0, "preserve after the refused raw requests (did one of them preserve it?)")
}

func sesDispatchNrRange(e *env) {
	_, s := e.outgoing("nr")
	nrs := []uint8{0x00, 0x01, 0x3f, 0x44, 0x45, 0x80, 0xff}
	if !e.f.GetName {
		nrs = append(nrs, 0x43)
	}
	m := e.memfd("x")
	for _, nr := range nrs {
		req := luoabi.NativeIOC.IO(liveupdate.IoctlType, nr)
		e.expect(s.RawIoctl(req, nil), unix.EINVAL, "session nr 0x%02x with no argument", nr)
		e.expect(s.RawIoctl(req, e.preserveArgs(16, 16, int32(fdOf(m)), 1)), unix.EINVAL, "session nr 0x%02x with a 16-byte argument", nr)
		e.expect(s.RawIoctl(req, e.args(72, 72)), unix.EINVAL, "session nr 0x%02x with a 72-byte argument", nr)
	}
	e.checkPreservable(s, fdOf(m), 1)
}

func sesDispatchUnreadable(e *env) {
	_, s := e.outgoing("efault")
	cmds := []liveupdate.Command{liveupdate.CmdPreserveFD, liveupdate.CmdRetrieveFD, liveupdate.CmdFinish}
	if e.f.GetName {
		cmds = append(cmds, liveupdate.CmdGetName)
	}
	for _, c := range cmds {
		e.expect(s.RawIoctl(c.Request(), nil), unix.EFAULT, "%v with a NULL argument", c)
		for _, n := range []int{0, 2, 3} {
			e.expect(s.RawIoctl(c.Request(), e.buf(n)), unix.EFAULT, "%v with %d readable bytes", c, n)
		}
	}
}

func sesDispatchWrongEncoding(e *env) {
	_, s := e.outgoing("enc")
	m := e.memfd("x")
	enc := wrongEncodings(liveupdate.CmdPreserveFD)
	for _, k := range sortedKeys(enc) {
		e.expect(s.RawIoctl(enc[k], e.preserveArgs(16, 16, int32(fdOf(m)), 9)), unix.ENOTTY, "PRESERVE_FD as 0x%08x (%s)", enc[k], k)
	}
	if e.f.GetName {
		enc := wrongEncodings(liveupdate.CmdGetName)
		for _, k := range sortedKeys(enc) {
			e.expect(s.RawIoctl(enc[k], e.args(72, 72)), unix.ENOTTY, "GET_NAME as 0x%08x (%s)", enc[k], k)
		}
	}
	e.checkPreservable(s, fdOf(m), 9)
}

func sesDispatchEncodingAfterRead(e *env) {
	_, s := e.outgoing("enc-read")
	enc := wrongEncodings(liveupdate.CmdPreserveFD)
	for _, k := range sortedKeys(enc) {
		e.expect(s.RawIoctl(enc[k], nil), unix.EFAULT, "PRESERVE_FD as 0x%08x (%s) with a NULL argument", enc[k], k)
	}
}

func sesDispatchEncodingBeforeDirection(e *env) {
	_, s := e.outgoing("enc-dir")
	for _, c := range []liveupdate.Command{liveupdate.CmdRetrieveFD, liveupdate.CmdFinish} {
		enc := wrongEncodings(c)
		for _, k := range sortedKeys(enc) {
			b := e.preserveArgs(16, c.Size(), -1, 1)
			e.expect(s.RawIoctl(enc[k], b), unix.ENOTTY, "%v as 0x%08x (%s) on an outgoing session", c, enc[k], k)
		}
	}
}

func sesDispatchEncodingBeforeSize(e *env) {
	_, s := e.outgoing("enc-size")
	enc := wrongEncodings(liveupdate.CmdPreserveFD)
	for _, k := range sortedKeys(enc) {
		e.expect(s.RawIoctl(enc[k], e.args(8, 8)), unix.ENOTTY, "PRESERVE_FD as 0x%08x (%s) with size 8", enc[k], k)
	}
}

func sesDispatchDirectionBeforeSize(e *env) {
	_, s := e.outgoing("dir-order")
	retrieveJunk := e.preserveArgs(24, 24, -1, 1)
	retrieveJunk[23] = 1
	finishJunk := e.args(16, 16)
	finishJunk[15] = 1
	if e.f.DirectionCheck {
		e.expect(s.RawIoctl(liveupdate.CmdRetrieveFD.Request(), e.args(8, 8)), unix.EINVAL, "RETRIEVE_FD with size 8 on an outgoing session")
		e.expect(s.RawIoctl(liveupdate.CmdRetrieveFD.Request(), retrieveJunk), unix.EINVAL,
			"RETRIEVE_FD on an outgoing session with junk after the struct (direction before copy)")
		e.expect(s.RawIoctl(liveupdate.CmdFinish.Request(), finishJunk), unix.EINVAL,
			"FINISH on an outgoing session with junk after the struct (direction before copy)")
		e.expect(s.RawIoctl(liveupdate.CmdFinish.Request(), e.args(4, 4)), unix.EINVAL,
			"FINISH on an outgoing session with size 4")
		return
	}
	// Without the check, the size and copy checks answer.
	e.expect(s.RawIoctl(liveupdate.CmdRetrieveFD.Request(), retrieveJunk), unix.E2BIG,
		"RETRIEVE_FD on an outgoing session with junk after the struct (no direction check)")
	e.expect(s.RawIoctl(liveupdate.CmdFinish.Request(), finishJunk), unix.E2BIG,
		"FINISH on an outgoing session with junk after the struct (no direction check)")
}

func sesDispatchSizeBelowMin(e *env) {
	_, s := e.outgoing("small")
	m := e.memfd("x")
	for _, size := range []uint32{0, 4, 8, 12, 15} {
		e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.preserveArgs(16, size, int32(fdOf(m)), 3)), unix.EINVAL,
			"PRESERVE_FD with size %d", size)
	}
	if e.f.GetName {
		e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), e.args(72, 15)), unix.EINVAL, "GET_NAME with size 15")
	}
	e.checkPreservable(s, fdOf(m), 3)
}

func sesDispatchSizeBeforeCopy(e *env) {
	_, s := e.outgoing("small-fault")
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.args(4, 15)), unix.EINVAL,
		"PRESERVE_FD with size 15 and only 4 readable bytes")
}

func sesDispatchSizeBeyondBuffer(e *env) {
	_, s := e.outgoing("fault")
	m := e.memfd("x")
	b := e.buf(12)
	native.PutUint32(b, 16)
	native.PutUint32(b[4:], uint32(fdOf(m)))
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), b), unix.EFAULT, "PRESERVE_FD with size 16 and 12 readable bytes")
	e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), e.preserveArgs(16, 24, int32(fdOf(m)), 4)), unix.EFAULT,
		"PRESERVE_FD with size 24 and 16 readable bytes")
	e.checkPreservable(s, fdOf(m), 4)
}

func sesDispatchTrailingNonzero(e *env) {
	_, s := e.outgoing("junk")
	m, used := e.memfd("x"), e.memfd("used")
	e.mustExpect(s.PreserveFD(fdOf(used), 1), 0, "preserve under token 1")
	bad := int32(e.badFD())
	for _, c := range []struct {
		fd    int32
		token uint64
		what  string
	}{
		{int32(fdOf(m)), 2, "a memfd"},
		{int32(fdOf(m)), 1, "a used token"},
		{bad, 2, "a closed fd"},
		{-1, 2, "fd -1"},
	} {
		b := e.preserveArgs(24, 24, c.fd, c.token)
		b[23] = 1
		e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), b), unix.E2BIG, "PRESERVE_FD of size 24 with junk after the struct and %s", c.what)
	}
	if e.f.GetName {
		b := e.args(80, 80)
		b[72] = 1
		e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), b), unix.E2BIG, "GET_NAME of size 80 with byte 72 set")
	}
	e.checkPreservable(s, fdOf(m), 2)
}

func sesDispatchTrailingZero(e *env) {
	_, s := e.outgoing("zero")
	for i, n := range []int{24, 4096} {
		m := e.memfd("x")
		token := uint64(10 + i)
		b := e.preserveArgs(n, uint32(n), int32(fdOf(m)), token)
		if e.expect(s.RawIoctl(liveupdate.CmdPreserveFD.Request(), b), 0, "PRESERVE_FD of size %d, zero past the struct", n) {
			e.expect(s.PreserveFD(fdOf(e.memfd("y")), token), unix.EEXIST, "preserve under the token the raw request used")
		}
	}
}

func sesDispatchGetNameReserved(e *env) {
	if !e.f.GetName {
		e.Skip("target has no GET_NAME (Features.GetName)")
	}
	_, s := e.outgoing("reserved")
	for _, r := range []uint32{1, 0x80000000} {
		b := e.args(72, 72)
		native.PutUint32(b[4:], r)
		e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), b), unix.EINVAL, "GET_NAME with reserved 0x%x", r)
	}
	b := e.args(80, 80)
	native.PutUint32(b[4:], 1)
	b[79] = 1
	e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), b), unix.E2BIG, "GET_NAME with reserved 1 and junk after the struct (copy before handler)")
}

func sesDispatchGetNameReply(e *env) {
	if !e.f.GetName {
		e.Skip("target has no GET_NAME (Features.GetName)")
	}
	name := e.name("reply")
	s := e.create(e.open(), name)
	for _, n := range []int{72, 80} {
		b := e.args(n, uint32(n))
		if !e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), b), 0, "GET_NAME of size %d", n) {
			continue
		}
		var a liveupdate.GetNameArgs
		a.Decode(b)
		got, err := liveupdate.NameFromBytes(&a.Name)
		if err != nil || got != name {
			e.Errorf("GET_NAME of size %d: name field %q, want %q NUL-terminated", n, a.Name[:], name)
		}
		for i, c := range a.Name[len(name):] {
			if c != 0 {
				e.Errorf("GET_NAME of size %d: byte %d after the name is 0x%02x, want 0", n, len(name)+i, c)
				break
			}
		}
		if a.Size != uint32(n) || a.Reserved != 0 {
			e.Errorf("GET_NAME of size %d replied size %d reserved %d, want them as sent", n, a.Size, a.Reserved)
		}
		for i, c := range b[72:] {
			if c != 0 {
				e.Errorf("GET_NAME of size %d wrote byte %d past its struct", n, 72+i)
				break
			}
		}
	}
}

func sesDispatchGetNameLayout(e *env) {
	if !e.f.GetName {
		e.Skip("target has no GET_NAME (Features.GetName)")
	}
	_, s := e.outgoing("layout")
	small := e.args(16, 16)
	withJunk := e.args(72, 72)
	copy(withJunk[8:], strings.Repeat("?", 64))
	e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), small), unix.EINVAL, "GET_NAME with size 16 (min_size 72)")
	e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), e.args(72, 71)), unix.EINVAL, "GET_NAME with size 71 (min_size 72)")
	if e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), withJunk), 0, "GET_NAME with size 72 and a non-zero name field (output only)") {
		var a liveupdate.GetNameArgs
		a.Decode(withJunk)
		if name, err := liveupdate.NameFromBytes(&a.Name); err != nil || !strings.HasPrefix(name, "luo-ct-") {
			e.Errorf("GET_NAME over a non-zero name field replied %q", a.Name[:])
		}
	}
}

func sesDispatchGetNameMissing(e *env) {
	if e.f.GetName {
		e.Skip("target has GET_NAME (Features.GetName)")
	}
	name := e.name("noname")
	d := e.open()
	s := e.create(d, name)
	e.expect(s.RawIoctl(liveupdate.CmdGetName.Request(), e.args(72, 72)), unix.EINVAL, "GET_NAME on a target without it")
	got, err := s.Name()
	if e.expect(err, 0, "Session.Name through its fallback") && got != name {
		e.Errorf("Session.Name = %q, want %q", got, name)
	}
}
