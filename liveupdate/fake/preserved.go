//go:build linux

package fake

// The kernel freezes a preserved memfd's size on its inode:
// memfd_luo_preserve (mm/memfd_luo.c) sets SHMEM_F_MAPPING_FROZEN, and
// clears it again when that preserve fails and when the file is
// unpreserved (its outgoing session closed); mm/shmem.c then refuses a
// size change, a write past the end and every fallocate with EPERM. A
// memfd retrieved in the next boot is a new inode, never frozen. The flag
// is one bit of the inode, so the last preserve or unpreserve of any file
// of the inode decides it: under Linux 6.19, whose memfd-v1 handler lets
// two open files of one memfd be preserved, unpreserving either thaws it.

// setFrozen sets or clears the frozen flag of the inode key.
func (b *boot) setFrozen(key fileKey, on bool) {
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	_, was := b.frozen[key]
	switch {
	case on && !was:
		if b.frozen == nil {
			b.frozen = map[fileKey]struct{}{}
		}
		b.frozen[key] = struct{}{}
		b.nfrozen.Add(1)
	case !on && was:
		delete(b.frozen, key)
		b.nfrozen.Add(-1)
	}
}

// Frozen tells whether fd's file is a memfd whose size the running kernel
// has frozen: a memfd (any fd of its inode: its own, a dup, another open
// of it through /proc) that a PRESERVE_FD of an outgoing session of this
// boot preserved and that has not been unpreserved since, by the close of
// its session (or, under Linux 6.19, of another session holding the same
// memfd). Closes the user has made are reflected, as by State. Memfds
// retrieved from an incoming session are not frozen; neither is anything
// after a Kexec until it is preserved again. fd may be an O_PATH fd. It
// fails only when fd cannot be fstat'd, or with ErrKernelClosed after
// Close.
func (k *Kernel) Frozen(fd int) (bool, error) {
	if k.isClosed() {
		return false, ErrKernelClosed
	}
	if !k.AnyFrozen() {
		return false, nil
	}
	k.reap()
	key, err := keyOf(fd)
	if err != nil {
		return false, err
	}
	b := k.boot()
	b.preservedMu.Lock()
	defer b.preservedMu.Unlock()
	_, ok := b.frozen[key]
	return ok, nil
}

// AnyFrozen tells, without a system call, whether the running kernel may
// have any memfd frozen (see Frozen). It does not reap: a session whose
// last fd was closed just now may still count, so true means Frozen may
// answer true; false means Frozen answers false for every fd until the
// next successful PRESERVE_FD of a memfd.
func (k *Kernel) AnyFrozen() bool {
	return k.boot().nfrozen.Load() > 0
}
