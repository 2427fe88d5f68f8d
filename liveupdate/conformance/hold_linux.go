//go:build linux

package conformance

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// holdOver hands copies of the open sessions' fds to the rig listening on
// the unix stream socket path, as the hold protocol says: messages of one
// byte HoldFDs with up to HoldMaxFDs fds each, one byte HoldEnd without
// fds, then it waits for the byte HoldKept. Then it closes its own copies.
func holdOver(path string, sessions []*liveupdate.Session) error {
	var fds []int
	for _, s := range sessions {
		if fd := s.Fd(); fd >= 0 {
			fds = append(fds, fd)
		}
	}
	deadline := time.Now().Add(holdTimeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("conformance: hold %d sessions: %w", len(fds), err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	uc.SetDeadline(deadline)
	for sent := 0; sent < len(fds); {
		n := min(len(fds)-sent, HoldMaxFDs)
		if _, _, err := uc.WriteMsgUnix([]byte{HoldFDs}, unix.UnixRights(fds[sent:sent+n]...), nil); err != nil {
			return fmt.Errorf("conformance: hold: send session fds %d to %d of %d to %s: %w", sent+1, sent+n, len(fds), path, err)
		}
		sent += n
	}
	if _, err := uc.Write([]byte{HoldEnd}); err != nil {
		return fmt.Errorf("conformance: hold: send the end of the %d session fds to %s: %w", len(fds), path, err)
	}
	var b [1]byte
	if _, err := io.ReadFull(uc, b[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("conformance: hold: %s did not confirm that it holds the %d session fds: %w", path, len(fds), err)
	}
	if b[0] != HoldKept {
		return fmt.Errorf("conformance: hold: %s answered byte 0x%02x, want 0x%02x ('K'): it may not hold the %d session fds", path, b[0], HoldKept, len(fds))
	}
	for _, s := range sessions {
		if s.Fd() >= 0 {
			s.Close()
		}
	}
	return nil
}
