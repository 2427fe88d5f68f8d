package liveupdate

import (
	"strings"
	"testing"
)

// The link text is the kernel's: "anon_inode:" + "[luo_session] " + name.
func TestSessionNameFromLink(t *testing.T) {
	name63 := strings.Repeat("x", MaxNameLen-1) + "y"
	for _, c := range []struct {
		link string
		name string
		ok   bool
	}{
		{"anon_inode:[luo_session] vm-42", "vm-42", true},
		{"anon_inode:[luo_session] with spaces  inside ", "with spaces  inside ", true},
		{"anon_inode:[luo_session]  leading space", " leading space", true},
		{"anon_inode:[luo_session] " + name63, name63, true},
		{"anon_inode:[luo_session] ends (deleted)", "ends (deleted)", true},
		{"anon_inode:[luo_session] new\nline", "new\nline", true},
		{"anon_inode:[luo_session] [luo_session] twice", "[luo_session] twice", true},
		{"anon_inode:[luo_session] ", "", true}, // Linux 6.19 took an empty name
		{"anon_inode:[luo_session]", "", false},
		{"anon_inode:[eventfd]", "", false},
		{"anon_inode:[luo_sessions] x", "", false},
		{"/dev/liveupdate", "", false},
		{"socket:[12345]", "", false},
		{"", "", false},
	} {
		name, ok := sessionNameFromLink(c.link)
		if name != c.name || ok != c.ok {
			t.Errorf("sessionNameFromLink(%q) = %q, %v; want %q, %v", c.link, name, ok, c.name, c.ok)
		}
	}
	if n := len(kernelSessionLink) + MaxNameLen; n > 255 {
		t.Errorf("a 63-byte name's link is %d bytes, past NAME_MAX", n)
	}
}
