//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goBinaries are the Go programs of the image: the output name below
// guestDir/bin, and the go command's arguments that build it.
var goBinaries = []struct {
	name string
	args []string
}{
	{"liveupdate.test", []string{"test", "-c", "./liveupdate/"}},
	{"handoff", []string{"build", "./examples/handoff"}},
	{"kexec-selftests", []string{"build", "./examples/kexec-selftests"}},
	{"daemon", []string{"build", "./examples/daemon"}},
	{"luoctl", []string{"build", "./cmd/luoctl"}},
}

// buildImage builds the guest's programs and writes the initramfs to
// dir/initramfs.cpio: luovm itself as /init, the Go programs, the
// kernel's selftests (when selftests is not empty), and the kernel itself,
// which the guest kexecs into.
func buildImage(ctx context.Context, dir, kernel, selftests string, log io.Writer) (string, error) {
	root := filepath.Join(dir, "root")
	os.RemoveAll(root)
	bin := filepath.Join(root, guestDir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	mod, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "luovm: building the guest's programs (static, linux/amd64)\n")
	if err := goBuild(ctx, mod, filepath.Join(root, "init"), "build", "./cmd/luovm"); err != nil {
		return "", err
	}
	for _, b := range goBinaries {
		if err := goBuild(ctx, mod, filepath.Join(bin, b.name), b.args...); err != nil {
			return "", err
		}
	}
	for _, a := range applets {
		if err := os.Symlink("/init", filepath.Join(bin, a)); err != nil {
			return "", err
		}
	}
	if err := copyPath(kernel, filepath.Join(root, guestKernel)); err != nil {
		return "", err
	}
	if selftests != "" {
		dst := filepath.Join(root, guestDir, "kselftest")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return "", err
		}
		for _, p := range append([]string{"liveupdate"}, kselftests...) {
			if err := copyPath(filepath.Join(selftests, p), filepath.Join(dst, p)); err != nil {
				return "", err
			}
		}
	}
	img := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(img)
	if err != nil {
		return "", err
	}
	if err := writeGuestTree(f, root); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if st, err := os.Stat(img); err == nil {
		fmt.Fprintf(log, "luovm: image %s, %.1f MiB\n", img, float64(st.Size())/(1<<20))
	}
	return img, nil
}

// moduleRoot returns the directory of the go-luo module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run luovm inside the go-luo module (go run ./cmd/luovm)")
	}
	return filepath.Dir(mod), nil
}

// goBuild runs the go command in the module with args and -o out, for a
// static linux/amd64 binary.
func goBuild(ctx context.Context, mod, out string, args ...string) error {
	full := append([]string{args[0], "-o", out}, args[1:]...)
	cmd := exec.CommandContext(ctx, "go", full...)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(full, " "), err, stderr.Bytes())
	}
	return nil
}

// copyPath copies the file src to dst, executable.
func copyPath(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
