//go:build !linux

package liveupdate

import (
	"os"
	"unsafe"
)

type backend uint8

func sysIoctl(backend, int, uint32, unsafe.Pointer, uintptr) error { return ErrNotSupported }
func sysOpen(string) (int, backend, error)                         { return -1, 0, ErrNotSupported }
func sysClose(int) error                                           { return ErrNotSupported }
func sysDup(int) (int, error)                                      { return -1, ErrNotSupported }
func sysDeviceBackend(int) (backend, error)                        { return 0, ErrNotSupported }
func sysClassify(int) (backend, string, error)                     { return 0, "", ErrNotSupported }
func newFile(fd int, name string) *os.File                         { return os.NewFile(uintptr(fd), name) }
func fdOf(*os.File) (int, error)                                   { return -1, ErrNotSupported }
