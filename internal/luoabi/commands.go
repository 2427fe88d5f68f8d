package luoabi

import "github.com/go-luo/luo/liveupdate"

// Commands lists every LUO command, in number order.
var Commands = []liveupdate.Command{
	liveupdate.CmdCreateSession, liveupdate.CmdRetrieveSession,
	liveupdate.CmdPreserveFD, liveupdate.CmdRetrieveFD, liveupdate.CmdFinish, liveupdate.CmdGetName,
}

// First numbers of the device and session command ranges
// (LIVEUPDATE_CMD_BASE, LIVEUPDATE_CMD_SESSION_BASE): the kernel indexes
// its ops tables with nr minus the base.
const (
	DeviceBase  liveupdate.Command = 0x00
	SessionBase liveupdate.Command = 0x40
)

// GetNameMinSizeSeed is the min_size of GET_NAME in kernels whose ops table
// describes GET_NAME with struct liveupdate_session_retrieve_fd: there a
// size of 16..71 is accepted and bytes 16..71 of a 72-byte request are
// trailing bytes that must be zero. A zeroed 72-byte struct with size 72,
// which package liveupdate sends, works with both tables.
const GetNameMinSizeSeed = 16

// MinSize returns the smallest size field the kernel accepts for c
// (offsetofend of the struct's last field, the ops table's min_size): the
// struct's size for every command of torvalds/linux; 0 for an unknown
// command. For GET_NAME some kernels accept less: see GetNameMinSizeSeed.
func MinSize(c liveupdate.Command) uint32 { return c.Size() }

// Direction returns the sessions a session command is valid on in kernels
// that check it (preserve: outgoing; retrieve and finish: incoming; get
// name: both). It is 0 for device commands and unknown ones.
func Direction(c liveupdate.Command) liveupdate.Direction {
	switch c {
	case liveupdate.CmdPreserveFD:
		return liveupdate.Outgoing
	case liveupdate.CmdRetrieveFD, liveupdate.CmdFinish:
		return liveupdate.Incoming
	case liveupdate.CmdGetName:
		return liveupdate.AnyDirection
	}
	return 0
}

// Nr returns the command number (_IOC_NR) of a request word: its low byte
// on every architecture.
func Nr(req uint32) liveupdate.Command { return liveupdate.Command(req & 0xff) }
