package liveupdate

import (
	"errors"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// DefaultPath is where the kernel's LUO device node lives.
const DefaultPath = "/dev/liveupdate"

// Device is an open LUO device: /dev/liveupdate, or a fake kernel's device
// (package fake). The kernel lets one process at a time hold it open. It
// creates outgoing sessions and retrieves incoming ones; the sessions live
// on after the Device is closed.
//
// A Device's methods may be called from several goroutines at once.
type Device struct {
	mu   sync.RWMutex // held for reading while fd is used, for writing by Close
	fd   int          // -1 once closed
	b    backend
	path string
}

// Open opens the LUO device at path, usually DefaultPath. Containers and test
// rigs may mount it elsewhere; a path naming a fake kernel's socket (see
// fake.Kernel.Listen) opens that fake in a binary that links package fake
// or liveupdate/fakeclient (elsewhere it fails with ENXIO).
//
// When no device exists at path the error matches ErrNotSupported and says
// what the kernel needs. When another process holds the device, it matches
// syscall.EBUSY.
func Open(path string) (*Device, error) {
	fd, b, err := sysOpen(path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, ErrNotSupported) {
			err = &notSupportedError{err}
		}
		return nil, &Error{Op: OpOpen, Path: path, Err: err}
	}
	return newDevice(fd, b, path), nil
}

// NewDevice wraps a device file descriptor this process did not open
// itself, such as /dev/liveupdate inherited from a service manager, or the
// user's end of a fake kernel's device. It duplicates fd (close-on-exec): fd
// stays the caller's. It fails with an error matching ErrNotDevice, and
// sends nothing, when fd is neither the kernel's device (a misc character
// device) nor a fake kernel's (a socket bound to a fake device's address,
// recognised where package fake or liveupdate/fakeclient is linked), such
// as another socket a service manager passed.
func NewDevice(fd int) (*Device, error) {
	b, err := sysDeviceBackend(fd)
	if err != nil {
		return nil, &Error{Op: OpWrapDevice, Err: err}
	}
	dup, err := sysDup(fd)
	if err != nil {
		return nil, &Error{Op: OpWrapDevice, Err: err}
	}
	return newDevice(dup, b, "fd "+strconv.Itoa(fd)), nil
}

func newDevice(fd int, b backend, path string) *Device {
	return &Device{fd: fd, b: b, path: path}
}

// notSupportedError wraps the errno of a failed open of a missing device.
type notSupportedError struct{ err error }

func (e *notSupportedError) Error() string {
	prefix := e.err.Error() + ": "
	if e.err == ErrNotSupported {
		prefix = "" // not Linux
	}
	return prefix + ErrNotSupported.Error() + " here; 'luoctl check' says why"
}
func (e *notSupportedError) Unwrap() error        { return e.err }
func (e *notSupportedError) Is(target error) bool { return target == ErrNotSupported }

// Fd returns the device's file descriptor, or -1 after Close. It stays owned
// by the Device.
func (d *Device) Fd() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.fd
}

// Close closes the device, letting another process open it. Sessions
// created or retrieved through it stay open. Closing twice returns an error
// matching ErrClosed.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return &Error{Op: OpClose, Path: d.path, Err: ErrClosed}
	}
	err := sysClose(d.fd)
	d.fd = -1
	if err != nil {
		return &Error{Op: OpClose, Path: d.path, Err: err}
	}
	return nil
}

// CreateSession creates an outgoing session: a named set of files to hand
// to the next kernel. The name is 1 to MaxNameLen bytes without NUL and
// unique among this boot's sessions (else the error matches
// syscall.EEXIST); a session of the same name may also have come from the
// previous kernel.
//
// Closing the returned session before the live update drops it and its
// files from the kernel.
func (d *Device) CreateSession(name string) (*Session, error) {
	return d.session(CmdCreateSession, OpCreateSession, name, Outgoing)
}

// RetrieveSession claims the incoming session of that name, handed over by
// the previous kernel. A session can be retrieved once (a second try fails
// with EINVAL while it lives, ENOENT after it was finished); sessions created
// in this boot are not found (ENOENT).
func (d *Device) RetrieveSession(name string) (*Session, error) {
	return d.session(CmdRetrieveSession, OpRetrieveSession, name, Incoming)
}

func (d *Device) session(c Command, op Op, name string, dir Direction) (*Session, error) {
	var a CreateSessionArgs
	if err := PutName(&a.Name, name); err != nil {
		return nil, &Error{Op: op, Session: name, Err: err}
	}
	a.Size = SizeofCreateSession
	a.FD = -1
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.fd < 0 {
		return nil, &Error{Op: op, Session: name, Err: ErrClosed}
	}
	if err := sysIoctl(d.b, d.fd, c.Request(), unsafe.Pointer(&a), SizeofCreateSession); err != nil {
		return nil, &Error{Op: op, Session: name, Err: err}
	}
	return newSession(int(a.FD), d.b, name, dir), nil
}

// RawIoctl sends the request word req with arg as its argument bytes to the
// device, exactly as given, and leaves the reply in arg, as the kernel
// writes it. It is for tests and experts: nothing is checked, so a request
// the typed methods would refuse (a name without NUL, a wrong size field)
// reaches the kernel. arg must hold at least as many bytes as its size
// field says, or the kernel reads past it (a fake kernel answers EFAULT).
// The returned error is the bare errno. A new fd in the reply is the
// caller's to close.
func (d *Device) RawIoctl(req uint32, arg []byte) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.fd < 0 {
		return ErrClosed
	}
	return sysIoctl(d.b, d.fd, req, unsafe.Pointer(unsafe.SliceData(arg)), uintptr(len(arg)))
}
