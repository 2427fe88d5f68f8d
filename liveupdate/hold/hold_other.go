//go:build !linux

package hold

import (
	"errors"
	"fmt"

	"github.com/go-luo/luo/liveupdate"
)

// Flag is the hidden command-line flag that starts a program as the holder.
const Flag = "-luo-hold"

// Holder is a detached process that holds copies of session fds; there
// are none on this system.
type Holder struct{}

// Pid returns 0: there is no holder on this system.
func (h *Holder) Pid() int { return 0 }

// Release does nothing: there is no holder on this system.
func (h *Holder) Release() error { return nil }

// Detach fails with an error matching errors.ErrUnsupported: LUO sessions
// need Linux.
func Detach(sessions []*liveupdate.Session) (*Holder, error) {
	return nil, fmt.Errorf("hold: LUO sessions need Linux: %w", errors.ErrUnsupported)
}

// Main returns at once: no program is a holder on this system.
func Main(args []string) {}
