//go:build linux

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The machine's own debian.sources (Debian bookworm's docker image, with
// snapshot comments), a disabled stanza and an inline key.
const sampleSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: sid
Components: main

types: deb deb-src
uris: https://mirror.example/pub/debian/
suites: trixie
components: main contrib
signed-by:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL
 -----END PGP PUBLIC KEY BLOCK-----
`

func TestParseDeb822Sources(t *testing.T) {
	got := parseDeb822Sources("x.sources", sampleSources)
	want := []aptSource{
		{From: "x.sources", Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian"},
			Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"},
			SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{From: "x.sources", Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian-security"},
			Suites: []string{"bookworm-security"}, Components: []string{"main"},
			SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{From: "x.sources", Types: []string{"deb", "deb-src"}, URIs: []string{"https://mirror.example/pub/debian/"},
			Suites: []string{"trixie"}, Components: []string{"main", "contrib"},
			SignedBy: "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPL\n -----END PGP PUBLIC KEY BLOCK-----"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestParseOneLineSources(t *testing.T) {
	text := "# comment\n" +
		"deb [arch=amd64 signed-by=/etc/apt/keyrings/d.gpg] http://ftp.de.debian.org/debian bookworm main non-free # tail\n" +
		"deb-src http://ftp.de.debian.org/debian bookworm main\n" +
		"deb [ broken\n" +
		"deb http://only-uri\n" +
		"\n"
	got := parseOneLineSources("sources.list", text)
	want := []aptSource{
		{From: "sources.list", Types: []string{"deb"}, URIs: []string{"http://ftp.de.debian.org/debian"},
			Suites: []string{"bookworm"}, Components: []string{"main", "non-free"}, SignedBy: "/etc/apt/keyrings/d.gpg"},
		{From: "sources.list", Types: []string{"deb-src"}, URIs: []string{"http://ftp.de.debian.org/debian"},
			Suites: []string{"bookworm"}, Components: []string{"main"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestIsDebianArchiveURI(t *testing.T) {
	for uri, want := range map[string]bool{
		"http://deb.debian.org/debian":          true,
		"https://mirror.example/pub/debian/":    true,
		"mirror+file:/etc/apt/mirrors.txt":      false,
		"http://deb.debian.org/debian-security": false,
		"http://archive.ubuntu.com/ubuntu":      false,
		"cdrom:[Debian]/debian":                 false,
		"file:/srv/debian":                      false,
		"http://deb.debian.org/debian-ports":    false,
		"::not a uri":                           false,
	} {
		if got := isDebianArchiveURI(uri); got != want {
			t.Errorf("isDebianArchiveURI(%q) = %v, want %v", uri, got, want)
		}
	}
}

// The private list takes the machine's mirror and key, and only those;
// the worked-by-hand list of /var/cache/go-luo/apt/sources.list, in deb822.
func TestPrivateSourcesText(t *testing.T) {
	m, err := findDebianMirror(parseDeb822Sources("/etc/apt/sources.list.d/debian.sources", sampleSources))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by luovm from /etc/apt/sources.list.d/debian.sources: where linux-source-7.2 comes from.\n" +
		"Types: deb\n" +
		"URIs: http://deb.debian.org/debian\n" +
		"Suites: unstable\n" +
		"Components: main\n" +
		"Targets: Packages\n" +
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
	if got := privateSourcesText(m); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// An inline key is carried over as the machine wrote it.
	srcs := parseDeb822Sources("k.sources", sampleSources)
	got := privateSourcesText(debianMirror{From: "k.sources", URI: srcs[2].URIs[0], SignedBy: srcs[2].SignedBy})
	if !strings.HasSuffix(got, "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPL\n -----END PGP PUBLIC KEY BLOCK-----\n") {
		t.Errorf("inline key:\n%s", got)
	}
	// No key: apt's own trusted keys, and no Signed-By line.
	if got := privateSourcesText(debianMirror{URI: "http://x/debian"}); strings.Contains(got, "Signed-By") {
		t.Errorf("no key:\n%s", got)
	}
}

func TestFindDebianMirrorNone(t *testing.T) {
	srcs := parseOneLineSources("s", "deb http://archive.ubuntu.com/ubuntu noble main\ndeb-src http://deb.debian.org/debian sid main\n")
	if _, err := findDebianMirror(srcs); err == nil {
		t.Fatal("found a Debian mirror among Ubuntu's and a deb-src")
	}
}

// machineSources reads sources.list and sources.list.d/*.list and
// *.sources, skipping others and missing files.
func TestMachineSources(t *testing.T) {
	etc := t.TempDir()
	d := filepath.Join(etc, "sources.list.d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(d, "debian.sources"), sampleSources)
	write(filepath.Join(d, "a.list"), "deb http://archive.ubuntu.com/ubuntu noble main\n")
	write(filepath.Join(d, "n.sources.disabled-by-farm"), "Types: deb\nURIs: http://other/debian\nSuites: x\nComponents: main\n")
	srcs, err := machineSources(etc)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, s := range srcs {
		uris = append(uris, s.URIs...)
	}
	want := "http://archive.ubuntu.com/ubuntu http://deb.debian.org/debian http://deb.debian.org/debian-security https://mirror.example/pub/debian/"
	if strings.Join(uris, " ") != want {
		t.Errorf("URIs %q, want %q", uris, want)
	}
	m, err := findDebianMirror(srcs)
	if err != nil || m.URI != "http://deb.debian.org/debian" || m.From != filepath.Join(d, "debian.sources") {
		t.Errorf("mirror %+v, %v", m, err)
	}
}
