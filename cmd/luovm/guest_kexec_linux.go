//go:build linux

package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-luo/luo/internal/newc"
	"golang.org/x/sys/unix"
)

// kexec loads the next boot of the chain (this kernel, this image rebuilt
// from the guest's own files, the boot number advanced) and reboots into
// it. It returns only on failure.
func (g *guest) kexec() error {
	k, err := os.Open(guestKernel)
	if err != nil {
		return err
	}
	defer k.Close()
	initrd, err := rebuildImage()
	if err != nil {
		return fmt.Errorf("rebuild the initramfs: %w", err)
	}
	defer initrd.Close()
	cmdline := nextCmdline(g.cmdline, g.boot+1)
	if err := kexecFileLoad(int(k.Fd()), int(initrd.Fd()), cmdline); err != nil {
		return fmt.Errorf("kexec_file_load: %w", err)
	}
	g.line("done %s %d", g.chain.name, g.boot)
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
}

// rebuildImage writes a newc archive of /init and everything below
// guestDir, the files the first boot's image had, into a memfd.
func rebuildImage() (*os.File, error) {
	fd, err := unix.MemfdCreate("luovm-initramfs", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "luovm-initramfs")
	if err := writeGuestTree(f, "/"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writeGuestTree writes to f the archive of an image rooted at root: its
// init, everything below guestDir, and the empty directories the guest
// mounts on.
func writeGuestTree(f io.Writer, root string) error {
	w := newc.NewWriter(f)
	for _, d := range skeletonDirs {
		if err := w.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(w, filepath.Join(root, "init"), "init"); err != nil {
		return err
	}
	top := filepath.Join(root, guestDir)
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return w.Dir(rel, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return w.Symlink(rel, target)
		}
		return copyFile(w, path, rel)
	})
	if err != nil {
		return err
	}
	return w.Close()
}

// skeletonDirs are the directories of an image besides guestDir.
var skeletonDirs = []string{"dev", "proc", "sys", "tmp", "run"}

// copyFile adds the regular file path to w as name.
func copyFile(w *newc.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%v)", path, st.Mode())
	}
	return w.File(name, st.Mode().Perm(), st.Size(), f)
}
