package testexec

import (
	"io"
	"os"
)

// LinkSelf makes path a link to the running test binary, a hard link or,
// where path is on another file system, a copy, so that a test can run the
// binary under another name (os.Args[0]): a test binary of a package main
// holds every file of the program, and its TestMain runs main when started
// under the program's name, so the test needs no go build. Not a symbolic
// link: /proc/self/exe, which a program may run again, names the link.
func LinkSelf(path string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if os.Link(self, path) == nil {
		return nil
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
