//go:build linux

package fake

import (
	"io"
	"sync"

	"github.com/go-luo/luo/kho"
	"golang.org/x/sys/unix"
)

// backedMin is the smallest memfd whose pages a live update keeps in a
// copy of the file (a memfdBacking) instead of the image's memory: the
// copy is one copy_file_range at Kexec, and at its retrieve it becomes the
// retrieved file itself, so the pages are copied once, as the kernel
// copies them not at all. Smaller files go through the image's memory,
// which costs no fd.
const backedMin = 1 << 20

// snapshotSource is a preserved memfd's contents for kho.WriteMemfd that
// copy themselves (kho.Snapshotter) into a new memfd made as a retrieve
// makes one (flags).
type snapshotSource struct {
	fd    int
	size  int64
	flags int
}

func (s snapshotSource) ReadAt(p []byte, off int64) (int, error) {
	return fdReaderAt(s.fd).ReadAt(p, off)
}

// Snapshot copies the file into a new memfd.
func (s snapshotSource) Snapshot(int64) (kho.Backing, error) {
	fd, err := memfdCreateExec(s.flags)
	if err != nil {
		return nil, err
	}
	if err := copyFile(fd, s.fd, s.size); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &memfdBacking{fd: fd}, nil
}

// memfdContents returns what WriteMemfd reads the memfd fd of size bytes
// from: contents that copy themselves when copy and the file has
// backedMin bytes.
func memfdContents(fd int, size int64, flags int, copy bool) io.ReaderAt {
	if copy && size >= backedMin {
		return snapshotSource{fd: fd, size: size, flags: flags}
	}
	return fdReaderAt(fd)
}

// copyFile copies size bytes of src into dst from offset 0, with
// copy_file_range where the kernel has it, else by reads and writes.
func copyFile(dst, src int, size int64) error {
	var soff, doff int64
	for soff < size {
		n, err := unix.CopyFileRange(src, &soff, dst, &doff, int(min(size-soff, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if soff == 0 && (err == unix.ENOSYS || err == unix.EXDEV || err == unix.EINVAL || err == unix.EOPNOTSUPP) {
				_, err = io.Copy(io.NewOffsetWriter(fdWriterAt(dst), 0), io.NewSectionReader(fdReaderAt(src), 0, size))
			}
			return err
		}
		if n == 0 {
			return nil // the file ends here; the rest reads as zeros
		}
	}
	return nil
}

// memfdBacking is the copy of a preserved memfd that holds its pages for
// the image (a kho.Backing), until its retrieve takes it as the new file
// or the image's memory is closed. Its methods may be called from several
// goroutines at once.
type memfdBacking struct {
	mu sync.Mutex
	fd int // -1 once taken or closed
}

func (b *memfdBacking) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fd < 0 {
		return 0, unix.EBADF
	}
	for n := 0; n < len(p); {
		m, err := unix.Pread(b.fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			clear(p[n:]) // past the file's end: zeros, as pages are
			break
		}
		n += m
	}
	return len(p), nil
}

func (b *memfdBacking) WriteAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fd < 0 {
		return 0, unix.EBADF
	}
	return unix.Pwrite(b.fd, p, off)
}

// Close closes the copy unless it was taken; it may be called again.
func (b *memfdBacking) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fd < 0 {
		return nil
	}
	err := unix.Close(b.fd)
	b.fd = -1
	return err
}

// take hands the copy's fd over to the caller, or returns -1 if it was
// taken or closed.
func (b *memfdBacking) take() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	fd := b.fd
	b.fd = -1
	return fd
}
