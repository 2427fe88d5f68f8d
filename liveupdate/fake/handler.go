package fake

import (
	"github.com/go-luo/luo/kho"
)

// Handler is a file handler of the fake kernel (the kernel's struct
// liveupdate_file_handler): it says which files it can preserve and
// carries them through a live update. Memfds have a built-in handler;
// register others with WithHandler to model the files a VMM preserves
// (KVM, VFIO, iommufd), with their state carried in the image.
//
// The kernel calls a handler with its locks held; so does the fake: a
// handler must not call back into the Kernel.
type Handler interface {
	// Compatible is the handler's identity in the image (at most 47
	// bytes), such as "memfd-v1". The next kernel must have a handler of
	// the same compatible string, or its first open fails with EIO.
	Compatible() string
	// CanPreserve reports whether the handler takes this file. The first
	// registered handler that does gets it; a file no handler takes
	// cannot be preserved (ENOENT).
	CanPreserve(fd int) bool
	// Preserve is called when the file is preserved in a session; an
	// error fails the preserve with its errno.
	Preserve(f *HandlerFile) error
	// Unpreserve undoes Preserve when the outgoing session is closed.
	Unpreserve(f *HandlerFile)
	// Freeze is called at the live update, in preservation order. It
	// writes the file's state into f.Mem and sets f.Data to what the next
	// kernel needs to find it (usually a physical address). An error fails
	// the live update.
	Freeze(f *HandlerFile) error
	// Unfreeze undoes Freeze when a later file fails to freeze.
	Unfreeze(f *HandlerFile)
	// Retrieve rebuilds the file in the new kernel from f.Data and f.Mem
	// and returns a new fd for it, which the fake then owns. Its error is
	// the retrieve's errno, for this and every later retrieve.
	Retrieve(f *HandlerFile) (fd int, err error)
	// CanFinish may refuse the session's finish (EBUSY); nothing is then
	// finished.
	CanFinish(f *HandlerFile) bool
	// Finish ends the file's journey: a file never retrieved
	// (f.Retrieved false) is to be destroyed.
	Finish(f *HandlerFile)
}

// FileIdentifier is implemented by handlers that decide which preserved
// files count as the same file (the kernel's get_id): a file can be
// preserved once (EBUSY). Without it, two fds of one inode are the same.
type FileIdentifier interface {
	SameFile(a, b int) bool
}

// HandlerFile is what a handler is told of one file (the kernel's
// struct liveupdate_file_op_args).
type HandlerFile struct {
	Token uint64
	// FD is the file: the preserved one in the outgoing kernel, the
	// retrieved one (or -1) in the incoming kernel. It is the fake's;
	// don't close it.
	FD int
	// Mem is the preserved memory: in Freeze, the image being written; in
	// Retrieve and Finish, the image the kernel booted from.
	Mem *kho.Memory
	// Data is the handler's word in the file's image entry (luo_file_ser
	// data): set by Freeze, read by Retrieve and Finish.
	Data uint64
	// Private is the handler's own, from Preserve to Unpreserve.
	Private any
	// Retrieved tells Finish whether the file was retrieved.
	Retrieved bool

	// toFile: Freeze writes an image the next kernel reads from a file
	// (WithImageFile), so a copy kept beside Mem would not reach it.
	toFile bool
}
