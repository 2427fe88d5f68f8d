package liveupdate

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// Session is an open LUO session: a named set of preserved files.
//
// An outgoing session (from Device.CreateSession) collects files with
// Preserve; the kernel hands it to the next kernel at the live update, as
// long as its fd is still open then. An incoming session (from
// Device.RetrieveSession, after the update) gives the files back with
// Retrieve and is released with Finish.
//
// A Session owns its file descriptor, and only Close closes it: no
// finalizer does, so a Session that is dropped without Close keeps its
// session alive in the kernel (the fd leaks, the state is not lost). See the
// package documentation for what closing does.
//
// A Session's methods may be called from several goroutines at once.
type Session struct {
	mu   sync.RWMutex // held for reading while fd is used, for writing by Close
	fd   int          // -1 once closed
	b    backend
	name string    // as known when the Session was made; for errors
	dir  Direction // 0 when not known (a wrapped fd)
}

func newSession(fd int, b backend, name string, dir Direction) *Session {
	return &Session{fd: fd, b: b, name: name, dir: dir}
}

// NewSession wraps a session file descriptor this process did not create
// itself, such as one received over a unix socket or inherited from a
// service manager. It duplicates fd (close-on-exec): fd stays the caller's,
// and the session lives on until every copy is closed. It fails with an
// error matching ErrNotSession when fd is not a LUO session of the kernel or
// of a fake kernel (recognised where package fake or liveupdate/fakeclient
// is linked).
func NewSession(fd int) (*Session, error) {
	b, name, err := sysClassify(fd)
	if err != nil {
		return nil, &Error{Op: OpWrapSession, Err: err}
	}
	dup, err := sysDup(fd)
	if err != nil {
		return nil, &Error{Op: OpWrapSession, Session: name, Err: err}
	}
	return newSession(dup, b, name, 0), nil
}

// IsSession reports whether fd is a LUO session file descriptor: of the
// kernel (an anonymous inode named "[luo_session] NAME") or of a fake kernel
// (where package fake or liveupdate/fakeclient is linked).
func IsSession(fd int) bool {
	_, _, err := sysClassify(fd)
	return err == nil
}

// Fd returns the session's file descriptor, or -1 after Close. It stays owned
// by the Session: pass it to other processes (over a unix socket with
// SCM_RIGHTS, or by inheritance) but do not close it.
func (s *Session) Fd() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.fd
}

// Direction returns Outgoing for a session this Session created, Incoming
// for one it retrieved, the one given to NewSessionAs, and 0 for an fd
// wrapped by NewSession.
func (s *Session) Direction() Direction { return s.dir }

// String describes the session for messages and %v: "luo session "
// followed by its name, quoted, as known when the Session was made (for
// a session named x, `luo session "x"`). It is not the name; Name
// returns that, as the kernel reports it.
func (s *Session) String() string { return "luo session " + strconv.Quote(s.name) }

// ioctl issues a typed request. Its arguments stay on the caller's stack:
// the kernel path allocates nothing.
func (s *Session) ioctl(c Command, arg unsafe.Pointer, size uintptr) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return ErrClosed
	}
	return sysIoctl(s.b, s.fd, c.Request(), arg, size)
}

// Preserve preserves the file f in an outgoing session under token, a key
// of the caller's choosing that is unique within the session. The kernel
// takes its own reference: f may be closed afterwards. Only some files can
// be preserved (memfds; others fail with ENOENT), a file can be in one
// session once (EBUSY), and while preserved a memfd cannot change size.
func (s *Session) Preserve(f *os.File, token uint64) error {
	fd, err := fdOf(f)
	if err != nil {
		return s.preserveErr(-1, token, err)
	}
	err = s.PreserveFD(fd, token)
	runtime.KeepAlive(f)
	return err
}

// PreserveFD is Preserve for a raw file descriptor, which stays the
// caller's.
func (s *Session) PreserveFD(fd int, token uint64) error {
	if fd < 0 {
		return s.preserveErr(fd, token, badFDError{fd})
	}
	a := PreserveFDArgs{Size: SizeofPreserveFD, FD: int32(fd), Token: token}
	if err := s.ioctl(CmdPreserveFD, unsafe.Pointer(&a), SizeofPreserveFD); err != nil {
		return s.preserveErr(fd, token, err)
	}
	return nil
}

// Retrieve returns the file preserved under token in an incoming session,
// as a new close-on-exec file that the caller owns. Retrieving again returns
// another descriptor of the same file; a retrieve that failed fails the same
// way every time. After Finish, files can no longer be retrieved (ENOENT).
func (s *Session) Retrieve(token uint64) (*os.File, error) {
	a := RetrieveFDArgs{Size: SizeofRetrieveFD, FD: -1, Token: token}
	if err := s.ioctl(CmdRetrieveFD, unsafe.Pointer(&a), SizeofRetrieveFD); err != nil {
		return nil, s.err(OpRetrieve, token, err)
	}
	return newFile(int(a.FD), "luo:"+s.name+":"+strconv.FormatUint(token, 10)), nil
}

// Finish tells the kernel the incoming session's files are back in use:
// files never retrieved are destroyed, and the session can be closed. It is
// all or nothing (when a file's handler refuses, EBUSY, nothing is
// finished) and may be called again.
func (s *Session) Finish() error {
	a := FinishArgs{Size: SizeofFinish}
	if err := s.ioctl(CmdFinish, unsafe.Pointer(&a), SizeofFinish); err != nil {
		return s.err(OpFinish, 0, err)
	}
	return nil
}

// Name asks the kernel for the session's name. Kernels that predate
// LIVEUPDATE_SESSION_GET_NAME answer EINVAL; then Name reads the name from
// the fd's /proc/self/fd link ("anon_inode:[luo_session] NAME"), which
// holds the whole name.
func (s *Session) Name() (string, error) {
	a := GetNameArgs{Size: SizeofGetName}
	err := s.ioctl(CmdGetName, unsafe.Pointer(&a), SizeofGetName)
	if err == nil {
		name, _ := NameFromBytes(&a.Name)
		return name, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return "", s.err(OpGetName, 0, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return "", s.err(OpGetName, 0, ErrClosed)
	}
	_, name, err := sysClassify(s.fd)
	if err != nil {
		return "", s.err(OpGetName, 0, err)
	}
	return name, nil
}

// Close closes the session's file descriptor. When it is the last copy of
// the fd, the kernel releases the session: an outgoing session is dropped
// and its files unpreserved (the live update will not carry it); an
// incoming one is finished, destroying files not yet retrieved. Closing
// twice returns an error matching ErrClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return s.err(OpClose, 0, ErrClosed)
	}
	err := sysClose(s.fd)
	s.fd = -1
	if err != nil {
		return s.err(OpClose, 0, err)
	}
	return nil
}

// RawIoctl sends req with arg as its argument bytes on the session fd,
// unchecked, and leaves the reply in arg; see Device.RawIoctl.
func (s *Session) RawIoctl(req uint32, arg []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return ErrClosed
	}
	return sysIoctl(s.b, s.fd, req, unsafe.Pointer(unsafe.SliceData(arg)), uintptr(len(arg)))
}

func (s *Session) err(op Op, token uint64, err error) error {
	return &Error{Op: op, Session: s.name, Token: token, Err: err}
}

func (s *Session) preserveErr(fd int, token uint64, err error) error {
	return &Error{Op: OpPreserve, Session: s.name, FD: fd, Token: token, Err: err}
}
