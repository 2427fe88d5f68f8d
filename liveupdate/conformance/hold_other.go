//go:build !linux

package conformance

import (
	"fmt"

	"github.com/go-luo/luo/liveupdate"
)

// holdOver fails: split runs need LUO, which exists only on Linux.
func holdOver(path string, sessions []*liveupdate.Session) error {
	return fmt.Errorf("conformance: hold %d sessions: %w", len(sessions), liveupdate.ErrNotSupported)
}
