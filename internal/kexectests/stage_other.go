//go:build !linux

package kexectests

import "github.com/go-luo/luo/liveupdate"

// DetectStage returns liveupdate.ErrNotSupported: the tests need Linux.
func (t Test) DetectStage(dev *liveupdate.Device) (stage int, state *liveupdate.Session, err error) {
	return 0, nil, liveupdate.ErrNotSupported
}

// Run returns liveupdate.ErrNotSupported: the tests need Linux.
func (t Test) Run(dev *liveupdate.Device, want int) (stage int, keep []*liveupdate.Session, passed string, err error) {
	return 0, nil, "", liveupdate.ErrNotSupported
}

// Stage1 returns liveupdate.ErrNotSupported: the tests need Linux.
func (t Test) Stage1(dev *liveupdate.Device) (keep []*liveupdate.Session, err error) {
	return nil, liveupdate.ErrNotSupported
}

// Stage2 returns liveupdate.ErrNotSupported: the tests need Linux.
func (t Test) Stage2(dev *liveupdate.Device, state *liveupdate.Session) (passed string, err error) {
	return "", liveupdate.ErrNotSupported
}

// EnsureNoFileLimit returns liveupdate.ErrNotSupported: the tests need
// Linux.
func EnsureNoFileLimit(n uint64) error { return liveupdate.ErrNotSupported }
