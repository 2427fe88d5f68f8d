//go:build !linux

package fake

import (
	"syscall"

	"github.com/go-luo/luo/liveupdate"
)

// Kernel is a fake LUO kernel. It needs Linux: on other systems the
// package declares the same names, so that code using it compiles
// everywhere, and New and every method fail with liveupdate.ErrNotSupported.
type Kernel struct{}

// New returns liveupdate.ErrNotSupported: the fake needs Linux.
func New(...Option) (*Kernel, error) { return nil, liveupdate.ErrNotSupported }

// Open returns liveupdate.ErrNotSupported.
func (k *Kernel) Open() (*liveupdate.Device, error) { return nil, liveupdate.ErrNotSupported }

// Close returns liveupdate.ErrNotSupported.
func (k *Kernel) Close() error { return liveupdate.ErrNotSupported }

// Kexec returns liveupdate.ErrNotSupported.
func (k *Kernel) Kexec() error { return liveupdate.ErrNotSupported }

// Reboot returns liveupdate.ErrNotSupported.
func (k *Kernel) Reboot() error { return liveupdate.ErrNotSupported }

// State returns the zero State.
func (k *Kernel) State() State { return State{} }

// CheckInvariants returns liveupdate.ErrNotSupported.
func (k *Kernel) CheckInvariants() error { return liveupdate.ErrNotSupported }

// Listen returns liveupdate.ErrNotSupported.
func (k *Kernel) Listen(path string) (stop func() error, err error) {
	return nil, liveupdate.ErrNotSupported
}

// FailPreserve returns liveupdate.ErrNotSupported.
func (k *Kernel) FailPreserve(n int, errno syscall.Errno) error { return liveupdate.ErrNotSupported }

// FailFreeze returns liveupdate.ErrNotSupported.
func (k *Kernel) FailFreeze(session string, errno syscall.Errno) error {
	return liveupdate.ErrNotSupported
}

// FailRetrieve returns liveupdate.ErrNotSupported.
func (k *Kernel) FailRetrieve(session string, token uint64, errno syscall.Errno) error {
	return liveupdate.ErrNotSupported
}

// FailRestore returns liveupdate.ErrNotSupported.
func (k *Kernel) FailRestore(errno syscall.Errno) error { return liveupdate.ErrNotSupported }

// CheckFaults returns liveupdate.ErrNotSupported.
func (k *Kernel) CheckFaults() error { return liveupdate.ErrNotSupported }
