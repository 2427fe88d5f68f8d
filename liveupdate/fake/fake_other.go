//go:build !linux

package fake

import "github.com/go-luo/luo/liveupdate"

// Kernel is a fake LUO kernel; it needs Linux.
type Kernel struct{}

// Option configures a fake kernel.
type Option func()

// New returns liveupdate.ErrNotSupported: the fake needs Linux.
func New(...Option) (*Kernel, error) { return nil, liveupdate.ErrNotSupported }
