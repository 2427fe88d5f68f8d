//go:build linux

package fakewire

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestParseRights reads the control data the kernel writes for a request
// (credentials, then the reply socket and the file) and what PutRights
// writes, and refuses data the kernel never writes.
func TestParseRights(t *testing.T) {
	var c Control
	oob := c.Bytes()
	n := copy(oob, unix.UnixCredentials(&unix.Ucred{Pid: 1}))
	n += copy(oob[n:], unix.UnixRights(7, 9))
	var fds [MaxFDs]int
	if got, ok := ParseRights(oob[:n], &fds); !ok || got != 2 || fds[0] != 7 || fds[1] != 9 {
		t.Fatalf("ParseRights = %v, %v, want fds 7 and 9", fds[:got], ok)
	}
	var p Control
	if got, ok := ParseRights(PutRights(&p, 5, 6, 2), &fds); !ok || got != 2 || fds[0] != 5 || fds[1] != 6 {
		t.Errorf("ParseRights(PutRights(5, 6)) = %v, %v", fds[:got], ok)
	}
	if got, ok := ParseRights(PutRights(&p, 5, -1, 1), &fds); !ok || got != 1 || fds[0] != 5 {
		t.Errorf("ParseRights(PutRights(5)) = %v, %v", fds[:got], ok)
	}
	// A header longer than the data, and a length that would wrap.
	long := make([]byte, unix.SizeofCmsghdr+8)
	for i := range 8 {
		long[i] = 0xff
	}
	for _, bad := range [][]byte{oob[:n-1], long} {
		if got, ok := ParseRights(bad, &fds); ok || got != 0 {
			t.Errorf("ParseRights(% x) = %d fds, %v; want 0, not ok", bad, got, ok)
		}
	}
}
