//go:build !linux

package fdpass

import (
	"errors"
	"fmt"
	"net"

	"github.com/go-luo/luo/liveupdate"
)

// Send writes s's fd to c with a message naming the session and its
// direction. LUO sessions exist only on Linux: here it fails with an error
// matching errors.ErrUnsupported.
func Send(c *net.UnixConn, s *liveupdate.Session) error {
	return fmt.Errorf("fdpass: send session: LUO sessions need Linux: %w", errors.ErrUnsupported)
}

// Receive reads a session fd and its message from c. LUO sessions exist
// only on Linux: here it fails with an error matching
// errors.ErrUnsupported.
func Receive(c *net.UnixConn) (*liveupdate.Session, error) {
	return nil, fmt.Errorf("fdpass: receive session: LUO sessions need Linux: %w", errors.ErrUnsupported)
}
