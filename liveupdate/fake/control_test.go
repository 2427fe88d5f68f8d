//go:build linux

package fake

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestParseControl reads the control data the kernel writes for a request:
// credentials, then the reply socket and the file.
func TestParseControl(t *testing.T) {
	var words [controlLen / 8]uint64
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), controlLen)
	n := copy(oob, unix.UnixCredentials(&unix.Ucred{Pid: 1}))
	n += copy(oob[n:], unix.UnixRights(7, 9))
	var fds rights
	if !parseControl(oob[:n], &fds) || fds.n != 2 || fds.fd[0] != 7 || fds.fd[1] != 9 {
		t.Fatalf("parseControl = %v, want fds 7 and 9", fds.all())
	}
	// Data the kernel never writes: a header longer than the data, one
	// shorter than a header, and a length that would wrap.
	for _, bad := range [][]byte{oob[:n-1], {1, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1, 0, 0, 0}} {
		fds = rights{}
		if len(bad) >= unix.SizeofCmsghdr && parseControl(bad, &fds) {
			t.Errorf("parseControl(% x): ok, want not ok", bad)
		}
		if fds.n != 0 && len(bad) < n {
			t.Errorf("parseControl(% x) kept fds %v", bad, fds.all())
		}
	}
}
