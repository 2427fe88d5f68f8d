package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// khoDebugfs is what KHO's debugfs directory says.
type khoDebugfs struct {
	Result
	Running bool // kho/ exists: the kernel's kho_init ran with KHO enabled
}

// checkKHODebugfs reports KHO's state in debugfs under root (usually
// /sys/kernel/debug): kho/out/ (finalize, sub_fdts) for the next kernel,
// kho/in/ when this kernel was booted by a KHO kexec. The kernel creates
// kho/ only when KHO is enabled; it may also be left out when its debugfs
// support is not built (CONFIG_KEXEC_HANDOVER_DEBUGFS).
func checkKHODebugfs(root string) khoDebugfs {
	r := khoDebugfs{Result: Result{Name: "kho-debugfs"}}
	entries, err := os.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0:
		r.Status, r.Detail = Unknown, "debugfs is not mounted at "+root
		r.Fix = "mount it (mount -t debugfs none " + root + ") and check again, to see KHO's state"
		return r
	case errors.Is(err, fs.ErrPermission):
		r.Status, r.Detail = Unknown, "cannot read "+root+": permission denied"
		r.Fix = "run as root to see KHO's state"
		return r
	case err != nil:
		r.Status, r.Detail = Unknown, "cannot read debugfs: "+err.Error()
		return r
	}
	kho := filepath.Join(root, "kho")
	if fi, err := os.Stat(kho); err != nil || !fi.IsDir() {
		r.Status = Unknown
		r.Detail = "no kho/ in " + root + ": KHO is disabled, or this kernel does not show it in debugfs (CONFIG_KEXEC_HANDOVER_DEBUGFS)"
		return r
	}
	r.Running = true
	r.Status = Pass
	parts := []string{"kho/ present (KHO is running)"}
	out := filepath.Join(kho, "out")
	if dirExists(out) {
		var p []string
		if v, err := os.ReadFile(filepath.Join(out, "finalize")); err == nil {
			p = append(p, "finalize="+strings.TrimSpace(string(v)))
		} else if !errors.Is(err, fs.ErrNotExist) {
			p = append(p, "finalize unreadable ("+errText(err)+")")
		}
		if fileExists(filepath.Join(out, "fdt")) {
			p = append(p, "fdt")
		}
		p = append(p, "sub_fdts=["+strings.Join(dirNames(filepath.Join(out, "sub_fdts")), " ")+"]")
		parts = append(parts, "out/: "+strings.Join(p, " "))
	} else {
		parts = append(parts, "no out/")
	}
	in := filepath.Join(kho, "in")
	if dirExists(in) {
		parts = append(parts, "in/: sub_fdts=["+strings.Join(dirNames(filepath.Join(in, "sub_fdts")), " ")+"] (this boot came from a KHO kexec)")
	} else {
		parts = append(parts, "no in/ (this boot did not come from a KHO kexec)")
	}
	r.Detail = strings.Join(parts, "; ")
	return r
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// dirNames lists a directory's entries (sorted), none if it is unreadable.
func dirNames(p string) []string {
	entries, _ := os.ReadDir(p)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// errText is err's message without the path that *fs.PathError adds.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
