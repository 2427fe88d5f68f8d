package liveupdate

import "strings"

// kernelSessionLink starts the /proc/self/fd link of a kernel session fd.
// luo_session_getfile (kernel/liveupdate/luo_session.c) names the file
// "[luo_session] NAME" with anon_inode_getfile, and anon_inodefs_dname
// (fs/anon_inodes.c) makes the link "anon_inode:" followed by that name.
const kernelSessionLink = "anon_inode:[luo_session] "

// sessionNameFromLink returns the session name a kernel session fd's
// /proc/self/fd link carries: every byte after "anon_inode:[luo_session] ",
// spaces included, as the kernel formats it (no quoting, no escaping, no
// " (deleted)" suffix: anonymous inodes have their own d_dname). The link
// is at most 11+14+63 bytes, far below the kernel's NAME_MAX limit
// (dynamic_dname, fs/d_path.c), so it is never cut short. ok is false for
// any other link. The name is empty only for a session of a kernel that
// did not validate names (Linux 6.19).
func sessionNameFromLink(link string) (name string, ok bool) {
	name, ok = strings.CutPrefix(link, kernelSessionLink)
	if !ok {
		return "", false
	}
	return name, true
}
