//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// aptSource is one source of the machine's apt configuration, from a
// deb822 stanza of a .sources file or from a line of a .list file.
type aptSource struct {
	From       string // the file it was read from
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	// SignedBy is the Signed-By value as written: a keyring path, a list
	// of fingerprints, or an inline key whose continuation lines keep
	// their leading space (deb822 only).
	SignedBy string
}

// parseDeb822Sources returns the enabled sources of a deb822 .sources
// file. Stanzas are separated by blank lines; lines starting with '#' are
// comments; a line starting with a space or tab continues the field above.
func parseDeb822Sources(from, text string) []aptSource {
	var srcs []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 && !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			srcs = append(srcs, aptSource{
				From:       from,
				Types:      strings.Fields(fields["types"]),
				URIs:       strings.Fields(fields["uris"]),
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				SignedBy:   strings.TrimRight(fields["signed-by"], " \t\n"),
			})
		}
		fields = map[string]string{}
		last = ""
	}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += "\n" + line
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue // not a field; apt would refuse the file
			}
			last = strings.ToLower(strings.TrimSpace(name))
			fields[last] = strings.TrimSpace(value)
		}
	}
	flush()
	return srcs
}

// parseOneLineSources returns the sources of a one-line-style sources.list:
// "deb [opt=value ...] uri suite component...", '#' starting a comment.
func parseOneLineSources(from, text string) []aptSource {
	var srcs []aptSource
	for line := range strings.Lines(text) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		typ, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		src := aptSource{From: from, Types: []string{typ}}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "[") {
			opts, after, ok := strings.Cut(rest[1:], "]")
			if !ok {
				continue
			}
			for _, o := range strings.Fields(opts) {
				if k, v, ok := strings.Cut(o, "="); ok && strings.EqualFold(k, "signed-by") {
					src.SignedBy = v
				}
			}
			rest = after
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		src.URIs, src.Suites, src.Components = f[:1], f[1:2], f[2:]
		srcs = append(srcs, src)
	}
	return srcs
}

// debianMirror is the Debian archive the machine already trusts, from
// which the private sources list takes the kernel source package.
type debianMirror struct {
	From     string // the file of the machine's configuration it came from
	URI      string
	SignedBy string // empty: apt's own trusted keys
}

// isDebianArchiveURI reports whether uri looks like a mirror of the main
// Debian archive: an http(s) or mirror URI whose path ends in "debian"
// (not debian-security, debian-ports or a CD-ROM).
func isDebianArchiveURI(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "mirror", "mirror+http", "mirror+https":
	default:
		return false
	}
	return path.Base(strings.TrimRight(u.Path, "/")) == "debian"
}

// findDebianMirror returns the first "deb" source of srcs whose URI is a
// Debian archive mirror.
func findDebianMirror(srcs []aptSource) (debianMirror, error) {
	for _, s := range srcs {
		if !slices.Contains(s.Types, "deb") {
			continue
		}
		for _, u := range s.URIs {
			if isDebianArchiveURI(u) {
				return debianMirror{From: s.From, URI: u, SignedBy: s.SignedBy}, nil
			}
		}
	}
	return debianMirror{}, errors.New("no Debian archive mirror (a deb source whose URI ends in /debian) in the machine's apt sources")
}

// kernelSuite and kernelComponent are where Debian has linux-source-7.2.
const (
	kernelSuite     = "unstable"
	kernelComponent = "main"
)

// privateSourcesText is the deb822 sources file of luovm's private apt
// configuration: the machine's Debian mirror and key, suite unstable,
// component main, and only the Packages indexes (no translations, no
// DEP-11 metadata).
func privateSourcesText(m debianMirror) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by luovm from %s: where %s comes from.\n", m.From, sourcePackage)
	fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nTargets: Packages\n",
		m.URI, kernelSuite, kernelComponent)
	switch {
	case m.SignedBy == "":
	case strings.HasPrefix(m.SignedBy, "\n"): // an inline key, as the machine wrote it
		fmt.Fprintf(&b, "Signed-By:%s\n", m.SignedBy)
	default:
		fmt.Fprintf(&b, "Signed-By: %s\n", m.SignedBy)
	}
	return b.String()
}

// machineSourcesFiles are the machine's apt sources, in the order apt
// reads them.
func machineSourcesFiles(etcApt string) []string {
	files := []string{filepath.Join(etcApt, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", pat))
		files = append(files, m...)
	}
	slices.Sort(files[1:])
	return files
}

// machineSources reads every sources file under etcApt (normally
// /etc/apt); files that do not exist are skipped.
func machineSources(etcApt string) ([]aptSource, error) {
	var srcs []aptSource
	for _, f := range machineSourcesFiles(etcApt) {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f, ".sources") {
			srcs = append(srcs, parseDeb822Sources(f, string(b))...)
		} else {
			srcs = append(srcs, parseOneLineSources(f, string(b))...)
		}
	}
	return srcs, nil
}
