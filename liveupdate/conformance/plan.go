package conformance

// stagePlan says how many stages each case that spans live updates has:
// how many kernels its e.stages call runs on. A split run needs it before
// any case runs, to run in boot N only the cases with a stage N, and a rig
// needs it to know how many boots to plan (SplitBoots). Cases not listed
// run on one kernel. stages fails a case whose call does not match its
// entry, so a case added without one is caught by every run.
var stagePlan = map[string]int{
	"create/name_both_outgoing_and_incoming": 2,

	"retrieve_session/once_EINVAL_while_listed_ENOENT_after_release": 2,
	"retrieve_session/incoming_sessions_survive_device_reopen":       2,

	"direction/preserve_fd_on_incoming": 2,
	"direction/get_name_on_incoming":    2,

	"retrieve_fd/by_token_contents_and_size_survive":       2,
	"retrieve_fd/memfd_closed_after_preserve_survives":     2,
	"retrieve_fd/position_survives":                        2,
	"retrieve_fd/unknown_token_ENOENT_every_time":          2,
	"retrieve_fd/second_retrieve_new_fd_same_file":         2,
	"retrieve_fd/retrieved_file_is_read_write":             2,
	"retrieve_fd/failed_retrieve_fails_the_same_way_again": 2,
	"retrieve_fd/write_only_reopen_preserved_and_carried":  2,

	"finish/destroys_unretrieved_files_and_repeats": 2,
	"finish/reserved":                             2,
	"finish/empty_session":                        2,
	"finish/closing_incoming_session_finishes_it": 2,

	"fds/incoming_session_and_retrieved_fds_are_cloexec": 2,

	"kexec/old_handles_fail_new_device_opens":       2,
	"kexec/only_open_outgoing_sessions_are_carried": 2,
	"kexec/incoming_sessions_are_not_carried_again": 3,
	"kexec/many_sessions_and_files":                 2,
	"kexec/size_change_fails_kexec":                 2,

	"linux72/finish_reserved_checked_before_finishing": 2,
	"linux72/seals_survive":                            2,
	"linux72/retrieved_memfd_flags_and_mode":           2,
	"linux72/duplicate_create_then_create_repairs":     2,
	"linux72/duplicate_create_then_close_repairs":      2,
}

// stageCount returns how many stages the case GROUP/CASE has: 0 for a
// case that runs on one kernel without calling stages.
func stageCount(name string) int { return stagePlan[name] }

// SplitBoots returns how many boots a full split run takes: the largest
// number of stages of any case (now 3: a case checks that sessions handed
// over once are not handed over again). Boot 0 runs every case; boot N > 0
// runs only the stage N of the cases that have one.
func SplitBoots() int {
	n := 1
	for _, c := range stagePlan {
		n = max(n, c)
	}
	return n
}
