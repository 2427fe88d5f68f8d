package fake

// State is a snapshot of a fake kernel's sessions, for tests that check
// what their agent left behind.
type State struct {
	LiveupdateNum uint64        // live updates this machine has been through
	DeviceOpen    bool          // a process holds the device open
	Outgoing      []SessionInfo // created in this boot, in creation order
	Incoming      []SessionInfo // handed over by the previous kernel and not yet released

	// SessionBlocks is the number of KHO blocks (51 entries each) the
	// kernel holds for its outgoing sessions (Linux 7.2; 0 in Linux
	// 6.19). One more than the sessions need is the broken state of the
	// kernel's duplicate-create bug: a Kexec now panics the next kernel.
	SessionBlocks int
	// Down says that the machine did not come up from the last Kexec
	// (its kernel panicked at boot) and runs nothing until Reboot.
	Down bool
}

// SessionInfo describes one session.
type SessionInfo struct {
	Name      string
	Retrieved bool       // an incoming session that has been retrieved
	Files     []FileInfo // in preservation order
}

// FileInfo describes one preserved file.
type FileInfo struct {
	Token      uint64
	Compatible string // the handler's compatible string, such as "memfd-v2"
	Retrieved  bool   // retrieved in this boot
}

// OutgoingSession returns the outgoing session of that name, and false
// when there is none.
func (st State) OutgoingSession(name string) (SessionInfo, bool) {
	return findSession(st.Outgoing, name)
}

// IncomingSession returns the incoming session of that name, and false
// when there is none (not handed over, finished, or not yet restored:
// the first Open restores them).
func (st State) IncomingSession(name string) (SessionInfo, bool) {
	return findSession(st.Incoming, name)
}

func findSession(l []SessionInfo, name string) (SessionInfo, bool) {
	for _, s := range l {
		if s.Name == name {
			return s, true
		}
	}
	return SessionInfo{}, false
}

// File returns the session's file of that token, and false when it holds
// none.
func (s SessionInfo) File(token uint64) (FileInfo, bool) {
	for _, f := range s.Files {
		if f.Token == token {
			return f, true
		}
	}
	return FileInfo{}, false
}
