package cstr

import "testing"

func TestString(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"", ""},
		{"\x00", ""},
		{"abc", "abc"},
		{"abc\x00", "abc"},
		{"ab\x00c\x00", "ab"},
		{"\x00abc", ""},
	} {
		if got := String([]byte(c.in)); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
