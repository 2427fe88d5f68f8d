//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sourcePackage is the Debian package whose tarball is the kernel source.
const sourcePackage = "linux-source-7.2"

// listsMaxAge is how long the private package lists are used before
// fetchSource refreshes them with "apt-get update". Within it, learning the
// candidate version costs no network at all.
const listsMaxAge = 24 * time.Hour

// kernelSource is an extracted kernel source tree in the cache.
type kernelSource struct {
	Dir     string // the tree: cacheDir/src/<Version>/linux-source-7.2
	Version string // the Debian package version it came from, such as "7.2.13-1"
}

// aptPaths are the files of luovm's private apt configuration under
// cacheDir/apt. The machine's apt configuration (/etc/apt/apt.conf.d,
// proxies, trusted keys) is still read; its sources, preferences, package
// lists, dpkg status and caches are not used or touched.
type aptPaths struct {
	Dir     string // cacheDir/apt
	Sources string // the private deb822 sources file
	Lists   string // package lists
	Status  string // an empty dpkg status: nothing is installed here
	Cache   string // apt's cache (downloaded archives of "apt-get install" would go here)
	Dl      string // where "apt-get download" leaves the .deb
	Updated string // touched after each successful "apt-get update"
	Log     string // output of apt, dpkg-deb and tar
}

func newAptPaths(cacheDir string) aptPaths {
	d := filepath.Join(cacheDir, "apt")
	return aptPaths{
		Dir:     d,
		Sources: filepath.Join(d, "debian.sources"),
		Lists:   filepath.Join(d, "lists"),
		Status:  filepath.Join(d, "status"),
		Cache:   filepath.Join(d, "cache"),
		Dl:      filepath.Join(d, "dl"),
		Updated: filepath.Join(d, "updated"),
		Log:     filepath.Join(d, "fetch.log"),
	}
}

// aptOptions are the -o options that point apt-get and apt-cache at the
// private configuration. Debug::NoLocking: the private directories are
// guarded by luovm's own lock, and the machine's dpkg lock is not needed
// because nothing is installed.
func aptOptions(p aptPaths) []string {
	opts := []string{
		"Dir::Etc::SourceList=" + p.Sources,
		"Dir::Etc::SourceParts=/dev/null",
		"Dir::Etc::Preferences=/dev/null",
		"Dir::Etc::PreferencesParts=/dev/null",
		"Dir::State=" + p.Dir,
		"Dir::State::Lists=" + p.Lists,
		"Dir::State::status=" + p.Status,
		"Dir::Cache=" + p.Cache,
		"Debug::NoLocking=1",
		"Acquire::Languages=none",
	}
	args := make([]string, 0, 2*len(opts))
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

// aptEnv makes apt's messages parseable and questions impossible.
var aptEnv = []string{"LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}

// sourceVersionDir is the directory name of a package version in the
// cache. ':' (an epoch) is replaced because make cannot handle it in paths.
func sourceVersionDir(version string) string {
	return strings.ReplaceAll(version, ":", "_")
}

// debFileName is the file name "apt-get download" gives the package at
// version: apt escapes ':' as "%3a".
func debFileName(version string) string {
	return sourcePackage + "_" + strings.ReplaceAll(version, ":", "%3a") + "_all.deb"
}

// parseCandidate returns the Candidate version in the output of
// "apt-cache policy" (in the C locale).
func parseCandidate(policy []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(policy))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("no candidate version of %s in %s %s", sourcePackage, kernelSuite, kernelComponent)
}

// fetchSource returns the source tree of the newest linux-source-7.2 of
// Debian unstable, downloading and extracting it into
// cacheDir/src/<version>/linux-source-7.2 unless that tree is there. An
// empty cacheDir means defaultCacheDir.
//
// The candidate version comes from private package lists under
// cacheDir/apt, refreshed with "apt-get update" when older than
// listsMaxAge. When the refresh fails (offline) the old lists are used,
// and when no candidate can be learned at all the most recently extracted
// tree in the cache is returned; only when there is none is it an error.
func fetchSource(ctx context.Context, cacheDir string, log io.Writer) (kernelSource, error) {
	cacheDir, err := resolveCacheDir(cacheDir)
	if err != nil {
		return kernelSource{}, err
	}
	p := newAptPaths(cacheDir)
	srcRoot := filepath.Join(cacheDir, "src")
	for _, d := range []string{filepath.Join(p.Lists, "partial"), filepath.Join(p.Cache, "archives", "partial"), p.Dl, srcRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return kernelSource{}, err
		}
	}
	unlock, err := lockPath(ctx, filepath.Join(cacheDir, "locks", "source"), log)
	if err != nil {
		return kernelSource{}, err
	}
	defer unlock()
	st, err := newSteps("source", log, p.Log)
	if err != nil {
		return kernelSource{}, err
	}
	defer st.close()

	version, err := candidateVersion(ctx, p, st)
	if err != nil {
		if ctx.Err() != nil {
			return kernelSource{}, err
		}
		src, ok := newestCachedSource(srcRoot)
		if !ok {
			return kernelSource{}, err
		}
		st.say("using the cached %s %s: %v", sourcePackage, src.Version, err)
		return src, nil
	}
	src := kernelSource{
		Dir:     filepath.Join(srcRoot, sourceVersionDir(version), sourcePackage),
		Version: version,
	}
	if exists(src.Dir) {
		st.say("%s %s is in %s", sourcePackage, version, src.Dir)
		return src, nil
	}
	if err := ensureTools(ctx, log, buildTools); err != nil {
		return kernelSource{}, err
	}
	start := time.Now()
	st.say("downloading %s %s", sourcePackage, version)
	args := append(aptOptions(p), "download", sourcePackage+"="+version)
	if err := st.run(ctx, p.Dl, aptEnv, "apt-get", args...); err != nil {
		return kernelSource{}, err
	}
	deb := filepath.Join(p.Dl, debFileName(version))
	if !exists(deb) {
		return kernelSource{}, fmt.Errorf("source: apt-get download left no %s in %s", filepath.Base(deb), p.Dl)
	}
	st.say("extracting %s", deb)
	if err := extractSource(ctx, st, deb, srcRoot, filepath.Dir(src.Dir)); err != nil {
		return kernelSource{}, err
	}
	removeOtherDebs(p.Dl, filepath.Base(deb))
	st.say("%s %s is in %s (%s)", sourcePackage, version, src.Dir, time.Since(start).Round(time.Second))
	return src, nil
}

// candidateVersion refreshes the private lists if they are missing or
// older than listsMaxAge (writing the private sources file first) and asks
// apt-cache for the candidate version of the source package.
func candidateVersion(ctx context.Context, p aptPaths, st *steps) (string, error) {
	if err := writePrivateSources(p, st); err != nil {
		return "", err
	}
	fi, err := os.Stat(p.Updated)
	if err != nil || time.Since(fi.ModTime()) > listsMaxAge || time.Since(fi.ModTime()) < 0 {
		st.say("apt-get update (private lists in %s)", p.Lists)
		if err := st.try(ctx, p.Dir, aptEnv, "apt-get", append(aptOptions(p), "update", "--error-on=any")...); err != nil {
			if ctx.Err() != nil {
				return "", err
			}
			st.say("using the package lists as they are: %v", err)
		} else if err := touch(p.Updated); err != nil {
			return "", err
		}
	}
	out, err := st.output(ctx, p.Dir, aptEnv, "apt-cache", append(aptOptions(p), "policy", sourcePackage)...)
	if err != nil {
		return "", err
	}
	return parseCandidate(out)
}

// writePrivateSources writes the private sources file from the machine's
// Debian mirror. When the machine names none but a private file exists
// already, that one is kept.
func writePrivateSources(p aptPaths, st *steps) error {
	if err := os.WriteFile(p.Status, nil, 0o644); err != nil {
		return err
	}
	srcs, err := machineSources("/etc/apt")
	var m debianMirror
	if err == nil {
		m, err = findDebianMirror(srcs)
	}
	if err != nil {
		if exists(p.Sources) {
			st.say("keeping %s: %v", p.Sources, err)
			return nil
		}
		return fmt.Errorf("source: %w", err)
	}
	text := privateSourcesText(m)
	if old, err := os.ReadFile(p.Sources); err == nil && string(old) == text {
		return nil
	}
	// A different source invalidates the lists' age.
	os.Remove(p.Updated)
	return os.WriteFile(p.Sources, []byte(text), 0o644)
}

// extractSource unpacks the tarball of the package deb into dest
// (cacheDir/src/<version>), by way of scratch directory under srcRoot that
// is renamed into place only when complete, so a tree in the cache is
// never a half-extracted one.
func extractSource(ctx context.Context, st *steps, deb, srcRoot, dest string) error {
	tmp := filepath.Join(srcRoot, ".extract")
	if err := os.RemoveAll(tmp); err != nil { // left by a killed fetch; we hold the lock
		return err
	}
	defer os.RemoveAll(tmp)
	pkgDir, tree := filepath.Join(tmp, "deb"), filepath.Join(tmp, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	if err := st.run(ctx, tmp, nil, "dpkg-deb", "-x", deb, pkgDir); err != nil {
		return err
	}
	tarball := filepath.Join(pkgDir, "usr", "src", sourcePackage+".tar.xz")
	if !exists(tarball) {
		return fmt.Errorf("source: %s has no %s", deb, strings.TrimPrefix(tarball, pkgDir))
	}
	if err := st.run(ctx, tmp, nil, "tar", "-xJf", tarball, "-C", tree); err != nil {
		return err
	}
	if !exists(filepath.Join(tree, sourcePackage, "Makefile")) {
		return fmt.Errorf("source: %s holds no %s/Makefile", tarball, sourcePackage)
	}
	return os.Rename(tree, dest)
}

// removeOtherDebs deletes the source packages of other versions in dl.
func removeOtherDebs(dl, keep string) {
	old, _ := filepath.Glob(filepath.Join(dl, sourcePackage+"_*.deb"))
	for _, f := range old {
		if filepath.Base(f) != keep {
			os.Remove(f)
		}
	}
}

// newestCachedSource returns the most recently extracted source tree under
// srcRoot.
func newestCachedSource(srcRoot string) (kernelSource, bool) {
	ents, err := os.ReadDir(srcRoot)
	if err != nil {
		return kernelSource{}, false
	}
	var best kernelSource
	var bestTime time.Time
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		dir := filepath.Join(srcRoot, e.Name(), sourcePackage)
		if !exists(dir) {
			continue
		}
		// The version directory was made at extraction; the tree's own
		// mtime is the release's, from the tarball.
		fi, err := os.Stat(filepath.Dir(dir))
		if err != nil {
			continue
		}
		if best.Dir == "" || fi.ModTime().After(bestTime) {
			best = kernelSource{Dir: dir, Version: strings.ReplaceAll(e.Name(), "_", ":")}
			bestTime = fi.ModTime()
		}
	}
	return best, best.Dir != ""
}

// touch creates the file at path, or sets its mtime to now.
func touch(path string) error {
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(path, now, now)
}
