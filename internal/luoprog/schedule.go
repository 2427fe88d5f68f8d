package luoprog

import "strconv"

// A Schedule runs many programs on one machine, a batch of them starting
// in each boot: boot j runs stage j-b of every program of batch b that
// has such a stage, in program order. Programs do not see each other:
// each names its sessions under a prefix of its own (Prefix) and opens
// and closes the device itself; and since no boot holds more than 51
// outgoing sessions of them (at most MaxCreates creates a stage, Batch
// programs a boot), none meets Linux 7.2's duplicate-create bug, which
// would stop the machine. So a program's trace in a schedule is its
// trace run alone, which is how the fake's side is computed.
type Schedule struct {
	Seeds []uint64 // the programs, by seed, in order
	Batch int      // programs starting in each boot
	Ops   int      // Generate's n
}

// MaxCreates is the most Create operations a scheduled program has in
// one stage.
const MaxCreates = 3

// NewSchedule returns the schedule of the first n seeds from first whose
// programs (Generate(seed, ops)) have at most MaxCreates creates a stage.
func NewSchedule(first uint64, n, batch, ops int) Schedule {
	s := Schedule{Batch: batch, Ops: ops}
	for seed := first; len(s.Seeds) < n; seed++ {
		if createsPerStage(Generate(seed, ops)) <= MaxCreates {
			s.Seeds = append(s.Seeds, seed)
		}
	}
	return s
}

func createsPerStage(p Program) int {
	most, n := 0, 0
	for _, o := range p {
		switch o.Kind {
		case Create:
			n++
			most = max(most, n)
		case Kexec:
			n = 0
		}
	}
	return most
}

// Program returns program i of the schedule.
func (s Schedule) Program(i int) Program { return Generate(s.Seeds[i], s.Ops) }

// Prefix is program i's session-name prefix.
func Prefix(i int) string { return "p" + strconv.Itoa(i) + "-" }

// Boots returns how many boots the schedule takes.
func (s Schedule) Boots() int {
	n := 0
	for i := range s.Seeds {
		n = max(n, i/s.Batch+s.Program(i).Stages())
	}
	return n
}

// A Slot is one program's stage in a boot.
type Slot struct {
	Program, Stage int
	Last           bool // the program's last stage: it keeps nothing
}

// Boot lists what boot j runs, in order.
func (s Schedule) Boot(j int) []Slot {
	var rs []Slot
	for i := range s.Seeds {
		b := i / s.Batch
		st := s.Program(i).Stages()
		if j >= b && j < b+st {
			rs = append(rs, Slot{Program: i, Stage: j - b, Last: j-b == st-1})
		}
	}
	return rs
}
