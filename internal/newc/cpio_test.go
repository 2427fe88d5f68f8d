//go:build unix

package newc

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sample writes an archive like a small initramfs. The device node is
// left out unless withDev (mknod needs root when extracting).
func sample(t *testing.T, withDev bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(w.Dir("bin", 0o755))
	check(w.File("bin/hello", 0o755, 6, strings.NewReader("hello\n")))
	check(w.File("bin/odd", 0o640, 3, strings.NewReader("abc")))
	check(w.Symlink("init", "bin/hello"))
	check(w.Dir("dev", 0o755))
	if withDev {
		check(w.CharDev("dev/console", 0o600, 5, 1))
	}
	check(w.Dir("etc", 0o700))
	check(w.File("etc/empty", 0o644, 0, strings.NewReader("")))
	check(w.Close())
	return buf.Bytes()
}

// cpioPath returns Debian's cpio, skipping the test when there is none.
func cpioPath(t *testing.T) string {
	p, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("no cpio (apt-get install cpio)")
	}
	return p
}

// GNU cpio lists the entries, in order.
func TestCpioList(t *testing.T) {
	cmd := exec.Command(cpioPath(t), "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(sample(t, true))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	want := "bin\nbin/hello\nbin/odd\ninit\ndev\ndev/console\netc\netc/empty\n"
	if string(out) != want {
		t.Errorf("cpio -t:\n got %q\nwant %q", out, want)
	}
}

// GNU cpio extracts what was written; AddFS of the extracted tree writes
// the same archive back.
func TestCpioExtract(t *testing.T) {
	root := os.Geteuid() == 0
	archive := sample(t, root)
	dir := t.TempDir()
	cmd := exec.Command(cpioPath(t), "-idv", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idv: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"bin/hello": "hello\n", "bin/odd": "abc", "etc/empty": ""} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "init")); err != nil || target != "bin/hello" {
		t.Errorf("init: %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/odd")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("bin/odd: %v, %v", fi, err)
	}
	if root {
		fi, err := os.Lstat(filepath.Join(dir, "dev/console"))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice || st.Rdev != 5<<8|1 {
			t.Errorf("dev/console: mode %v rdev %#x, want a char device 5:1", fi.Mode(), st.Rdev)
		}
		os.Remove(filepath.Join(dir, "dev/console")) // AddFS does not take devices
	}
	// cpio -i restores directory modes as written; 0700 etc is kept.
	var rebuilt bytes.Buffer
	w := NewWriter(&rebuilt)
	if err := w.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := readArchive(rebuilt.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	// WalkDir order: sorted within each directory, parents first.
	if want := "bin bin/hello bin/odd dev etc etc/empty init"; strings.Join(names, " ") != want {
		t.Errorf("rebuilt: %q, want %q", names, want)
	}
	for _, e := range got {
		if e.Name == "etc" && e.Mode != 0o040700 || e.Name == "init" && (e.Mode != 0o120777 || e.Data != "bin/hello") {
			t.Errorf("rebuilt %+v", e)
		}
	}
}

// AddFS refuses a FIFO, naming it.
func TestAddFSRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skip(err)
	}
	err := NewWriter(&bytes.Buffer{}).AddFS(os.DirFS(dir))
	if err == nil || !strings.Contains(err.Error(), "pipe") {
		t.Errorf("AddFS with a FIFO: %v", err)
	}
}
