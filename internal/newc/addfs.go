package newc

import (
	"fmt"
	"io/fs"
)

// modeBits are the bits of an fs.FileMode that the newc mode field keeps
// besides the file type.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// AddFS adds every directory, regular file and symbolic link of fsys
// except its root, in the order of fs.WalkDir: each directory before what
// it holds, the entries of a directory sorted by name. Names are the
// paths within fsys; modes and sizes are those of fsys; symlinks are read
// with fs.ReadLink and not followed. Any other kind of file (a device, a
// FIFO, a socket) is an error, as is fsys changing during the walk so
// that a file is shorter than it was.
func (w *Writer) AddFS(fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("newc: AddFS: %w", err)
		}
		if name == "." {
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("newc: AddFS: %w", err)
			}
			return w.Dir(name, info.Mode()&modeBits)
		case t.IsRegular():
			return w.addFile(fsys, name)
		case t&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, name)
			if err != nil {
				return fmt.Errorf("newc: AddFS: %w", err)
			}
			return w.Symlink(name, target)
		default:
			return fmt.Errorf("newc: AddFS: %s: cannot archive a file of type %v", name, t)
		}
	})
}

// addFile adds the regular file name of fsys.
func (w *Writer) addFile(fsys fs.FS, name string) error {
	f, err := fsys.Open(name)
	if err != nil {
		return fmt.Errorf("newc: AddFS: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("newc: AddFS: %w", err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("newc: AddFS: %s: no longer a regular file", name)
	}
	return w.File(name, info.Mode()&modeBits, info.Size(), f)
}
