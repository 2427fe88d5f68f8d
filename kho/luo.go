package kho

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/go-luo/luo/internal/cstr"
)

// State is the LUO state handed to the next kernel, in a form independent
// of where it lies in memory.
type State struct {
	// LiveupdateNum is luo_ser.liveupdate_num: the number of live updates
	// so far. The kernel that reads it sends this value plus one onwards.
	LiveupdateNum uint64
	// Sessions are the preserved sessions in serialization order.
	Sessions []SessionState
	// FLBs are the preserved file-lifecycle-bound objects, usually none.
	FLBs []FLBSer
	// SessionBlocks, when larger than the number of blocks the sessions
	// need, is the number of blocks WriteLUO chains for them: the
	// kernel serializes into a block set grown when sessions are created,
	// and Linux 7.2 can leave one block more than its sessions fill (a
	// duplicate CREATE_SESSION at 51·k sessions). Blocks past the
	// sessions are written empty, with count 0, which ReadLUO, like the
	// next kernel, rejects. Without sessions it is ignored: the kernel
	// then hands over no session chain. ReadLUO never sets it.
	SessionBlocks int
}

// SessionState is one preserved session and its files in preservation
// order.
type SessionState struct {
	Name  string
	Files []FileSer
}

// WriteLUO lays st out in m the way the kernel does at reboot and returns
// the PA of struct luo_ser (the root of the "LUO" subtree). It allocates
// one page for luo_ser, one for the FLB area ({pgcnt 1, count} then the
// entries), a chain of session blocks (sessions_pa is 0 if there are no
// sessions) and, per session, a chain of file blocks (files and count are 0
// if the session has no files). Each block is filled before the next;
// with State.SessionBlocks, empty session blocks follow the last one filled.
//
// It checks what the kernel checks when the state is built: session names
// of 1 to 63 bytes without NUL (EINVAL), unique (EEXIST); handler and FLB
// compatibles of 1 to 47 bytes without NUL (EINVAL); tokens unique within a
// session (EEXIST); at most MaxBlocks blocks per chain, SessionBlocks
// included, and MaxFLBs FLBs (ENOSPC). On error nothing stays allocated. It takes time linear in the
// number of sessions and files.
func WriteLUO(m *Memory, st *State) (root uint64, err error) {
	if err := validateState(st); err != nil {
		return 0, err
	}
	w := &writer{m: m}
	defer func() {
		if err != nil {
			w.undo()
		}
	}()

	root = w.alloc(1)
	flbs := w.alloc(1)
	flb := m.span(flbs, PageSize)
	ne.PutUint64(flb[0:], 1) // pgcnt
	ne.PutUint64(flb[8:], uint64(len(st.FLBs)))
	for i := range st.FLBs {
		off := FLBHeaderSize + i*FLBSerSize
		st.FLBs[i].put(flb[off : off+FLBSerSize])
	}

	var sessionsPA uint64
	if n := len(st.Sessions); n > 0 {
		sessionsPA = w.chain(n, st.SessionBlocks, SessionSerSize, func(i int, b []byte) {
			s := &st.Sessions[i]
			ser := SessionSer{Name: s.Name}
			if len(s.Files) > 0 {
				ser.FileCount = uint64(len(s.Files))
				ser.FilesPA = w.chain(len(s.Files), 0, FileSerSize, func(j int, fb []byte) {
					s.Files[j].put(fb)
				})
			}
			ser.put(b)
		})
	}

	ls := LUOSer{Compatible: LUOCompatible, LiveupdateNum: st.LiveupdateNum, SessionsPA: sessionsPA, FLBsPA: flbs}
	copy(m.span(root, LUOSerSize), ls.Encode())
	return root, nil
}

func validateState(st *State) error {
	if st == nil {
		return fmt.Errorf("kho: nil State: %w", syscall.EINVAL)
	}
	if len(st.FLBs) > MaxFLBs {
		return fmt.Errorf("kho: %d FLBs, at most %d fit: %w", len(st.FLBs), MaxFLBs, syscall.ENOSPC)
	}
	for _, f := range st.FLBs {
		if err := checkCString("FLB name", f.Name, CompatLength); err != nil {
			return err
		}
	}
	if len(st.Sessions) > MaxBlocks*SessionsPerBlock {
		return fmt.Errorf("kho: %d sessions, at most %d fit: %w", len(st.Sessions), MaxBlocks*SessionsPerBlock, syscall.ENOSPC)
	}
	if st.SessionBlocks > MaxBlocks {
		return fmt.Errorf("kho: %d session blocks, at most %d: %w", st.SessionBlocks, MaxBlocks, syscall.ENOSPC)
	}
	repeat := firstRepeat(len(st.Sessions), func(i int) string { return st.Sessions[i].Name })
	var tokens map[uint64]struct{}
	for i := range st.Sessions {
		s := &st.Sessions[i]
		if err := checkCString("session name", s.Name, SessionNameLength); err != nil {
			return err
		}
		if i == repeat {
			return fmt.Errorf("kho: session name %q used twice: %w", s.Name, syscall.EEXIST)
		}
		if len(s.Files) > MaxBlocks*FilesPerBlock {
			return fmt.Errorf("kho: session %q has %d files, at most %d fit: %w", s.Name, len(s.Files), MaxBlocks*FilesPerBlock, syscall.ENOSPC)
		}
		clear(tokens)
		if tokens == nil {
			tokens = make(map[uint64]struct{}, len(s.Files))
		}
		for _, f := range s.Files {
			if err := checkCString("file compatible", f.Compatible, CompatLength); err != nil {
				return err
			}
			if _, dup := tokens[f.Token]; dup {
				return fmt.Errorf("kho: session %q: token %#x used twice: %w", s.Name, f.Token, syscall.EEXIST)
			}
			tokens[f.Token] = struct{}{}
		}
	}
	return nil
}

// checkCString accepts 1 to field-1 bytes without NUL.
func checkCString(what, s string, field int) error {
	if len(s) == 0 || len(s) > field-1 || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("kho: %s %q must have 1 to %d bytes and no NUL: %w", what, s, field-1, syscall.EINVAL)
	}
	return nil
}

// writer allocates pages and frees them all on undo.
type writer struct {
	m      *Memory
	allocs []uint64 // single pages or first pages of runs
	npages []int
}

func (w *writer) alloc(n int) uint64 {
	pa := w.m.Alloc(n)
	w.allocs = append(w.allocs, pa)
	w.npages = append(w.npages, n)
	return pa
}

func (w *writer) undo() {
	for i, pa := range w.allocs {
		w.m.Free(pa, w.npages[i])
	}
	w.allocs, w.npages = nil, nil
}

// chain writes n entries of size bytes into a new chain of at least
// minBlocks blocks, calling put for each entry slot in order, and returns
// the PA of the first block. Blocks past the entries have count 0.
func (w *writer) chain(n, minBlocks, size int, put func(i int, b []byte)) uint64 {
	per := (PageSize - BlockHeaderSize) / size
	nblocks := max((n+per-1)/per, minBlocks)
	// Like the kernel, every block is a page of its own.
	pas := make([]uint64, nblocks)
	for i := range pas {
		pas[i] = w.alloc(1)
	}
	for bi, pa := range pas {
		blk := w.m.span(pa, PageSize)
		first := bi * per
		count := max(0, min(per, n-first))
		var next uint64
		if bi+1 < nblocks {
			next = pas[bi+1]
		}
		ne.PutUint64(blk[0:], next)
		ne.PutUint64(blk[8:], uint64(count))
		for j := 0; j < count; j++ {
			off := BlockHeaderSize + j*size
			put(first+j, blk[off:off+size])
		}
	}
	return pas[0]
}

// ReadLUO decodes and validates the LUO state whose struct luo_ser is at
// root, following the kernel's rules (see the package documentation). It
// never panics; its work and allocations are linear in the pages and
// entries actually present, but for a sort of one word per session (to
// find a name used twice). Errors are *DecodeError values, and the
// State is nil with them, except for an error in the FLB area (its Rule
// starts with "FLB"), which is decoded last: then ReadLUO returns the
// state decoded without FLBs too, as the kernel, which reads the FLB area
// only for the handlers that use FLBs, can still restore the sessions.
func ReadLUO(m *Memory, root uint64) (*State, error) {
	r := &reader{m: m, used: make(map[uint64]uint32)}
	buf := m.span(root, LUOSerSize)
	if buf == nil {
		if err := m.check(root, LUOSerSize); err != nil {
			return nil, decodeErr(root, ErrBadAddress, "luo_ser outside preserved memory")
		}
		buf = make([]byte, LUOSerSize)
		_ = m.ReadAt(buf, root)
	}
	// The kernel compares with strncmp(compatible, "luo-v5", 8).
	if c := buf[:luoCompatLen]; cstr.String(c) != LUOCompatible {
		return nil, decodeErr(root, syscall.EINVAL, "luo_ser compatible %q is not %q", cstr.String(c), LUOCompatible)
	}
	var ls LUOSer
	_ = ls.Decode(buf)
	st := &State{LiveupdateNum: ls.LiveupdateNum}

	// luo_session_setup_incoming: restore (validate) the session blocks.
	var sessionBlocks []chainBlock
	if ls.SessionsPA != 0 {
		var err error
		sessionBlocks, err = r.chain(ls.SessionsPA, SessionSerSize, "session")
		if err != nil {
			return nil, err
		}
	}
	// luo_session_deserialize.
	total := 0
	for _, b := range sessionBlocks {
		total += b.count
	}
	if total > 0 {
		st.Sessions = make([]SessionState, 0, total)
	}
	// The entries, then the first name used twice, which fails where the
	// kernel's insert of that session fails.
	entries := make([]SessionSer, 0, total)
	for _, b := range sessionBlocks {
		blk := m.span(b.pa, PageSize)
		for i := 0; i < b.count; i++ {
			off := BlockHeaderSize + i*SessionSerSize
			var ss SessionSer
			_ = ss.Decode(blk[off : off+SessionSerSize])
			entries = append(entries, ss)
		}
	}
	repeat := firstRepeat(len(entries), func(i int) string { return entries[i].Name })
	n := 0
	for _, b := range sessionBlocks {
		for i := 0; i < b.count; i, n = i+1, n+1 {
			entryPA := b.pa + uint64(BlockHeaderSize+i*SessionSerSize)
			ss := entries[n]
			if n == repeat {
				return nil, decodeErr(entryPA, syscall.EEXIST, "session name %q used twice", ss.Name)
			}
			files, err := r.files(entryPA, &ss)
			if err != nil {
				return nil, err
			}
			st.Sessions = append(st.Sessions, SessionState{Name: ss.Name, Files: files})
		}
	}
	// The FLB area last: the kernel does not read it at boot
	// (luo_flb_setup_incoming keeps its address for the handlers that
	// use FLBs), so a bad one leaves the rest of the state usable.
	if ls.FLBsPA != 0 {
		flbs, err := r.flbs(ls.FLBsPA)
		if err != nil {
			return st, err
		}
		st.FLBs = flbs
	}
	return st, nil
}

type reader struct {
	m      *Memory
	used   map[uint64]uint32 // block page -> chain id (1-based)
	chains uint32
}

type chainBlock struct {
	pa    uint64
	count int
}

// chain validates the block chain starting at head with the kernel's rules
// (kho_block_set_restore) and returns its blocks.
func (r *reader) chain(head uint64, entrySize int, kind string) ([]chainBlock, error) {
	per := (PageSize - BlockHeaderSize) / entrySize
	r.chains++
	id := r.chains
	// The kernel's Floyd walk gives up (corrupt, EINVAL) on acyclic chains
	// of floydLimit blocks or more; a cycle is EINVAL as well.
	const floydLimit = 2*MaxBlocks + 1
	var blocks []chainBlock
	for pa := head; pa != 0; {
		if pa%PageSize != 0 {
			return nil, decodeErr(pa, syscall.EINVAL, "%s block not page aligned", kind)
		}
		blk := r.m.span(pa, BlockHeaderSize)
		if blk == nil {
			return nil, decodeErr(pa, ErrBadAddress, "%s block outside preserved memory", kind)
		}
		if owner, seen := r.used[pa]; seen {
			if owner == id {
				return nil, decodeErr(pa, syscall.EINVAL, "%s block chain has a cycle", kind)
			}
			return nil, decodeErr(pa, syscall.EINVAL, "%s block page already used by another chain", kind)
		}
		r.used[pa] = id
		count := ne.Uint64(blk[8:])
		c := 0
		if count <= uint64(per) {
			c = int(count)
		}
		blocks = append(blocks, chainBlock{pa: pa, count: c})
		if len(blocks) >= floydLimit {
			return nil, decodeErr(head, syscall.EINVAL, "%s block chain has %d blocks or more (cycle check limit)", kind, floydLimit)
		}
		pa = ne.Uint64(blk[0:])
	}
	// kho_block_set_restore checks each block's count, then adds it, which
	// fails once MaxBlocks blocks are in.
	for i, b := range blocks {
		if b.count == 0 {
			count := ne.Uint64(r.m.span(b.pa, BlockHeaderSize)[8:])
			return nil, decodeErr(b.pa, syscall.EINVAL, "%s block count %d not in 1..%d", kind, count, per)
		}
		if i == MaxBlocks {
			return nil, decodeErr(b.pa, syscall.ENOSPC, "%s block chain longer than %d blocks", kind, MaxBlocks)
		}
	}
	return blocks, nil
}

// files decodes the file set of the session entry at entryPA.
func (r *reader) files(entryPA uint64, ss *SessionSer) ([]FileSer, error) {
	if ss.FilesPA == 0 {
		// luo_file_deserialize only warns when count is not 0.
		return nil, nil
	}
	blocks, err := r.chain(ss.FilesPA, FileSerSize, "file")
	if err != nil {
		return nil, err
	}
	var sum uint64
	for _, b := range blocks {
		sum += uint64(b.count)
	}
	if sum != ss.FileCount {
		return nil, decodeErr(entryPA, syscall.EINVAL, "session %q file count %d but its blocks hold %d", ss.Name, ss.FileCount, sum)
	}
	files := make([]FileSer, 0, sum)
	for _, b := range blocks {
		blk := r.m.span(b.pa, PageSize)
		for i := 0; i < b.count; i++ {
			off := BlockHeaderSize + i*FileSerSize
			var f FileSer
			_ = f.Decode(blk[off : off+FileSerSize])
			files = append(files, f)
		}
	}
	return files, nil
}

// flbs decodes the FLB area at pa. The kernel trusts pgcnt and count; this
// reader requires count to fit in pgcnt pages.
func (r *reader) flbs(pa uint64) ([]FLBSer, error) {
	var hdr [FLBHeaderSize]byte
	if err := r.m.ReadAt(hdr[:], pa); err != nil {
		return nil, decodeErr(pa, ErrBadAddress, "FLB header outside preserved memory")
	}
	pgcnt := ne.Uint64(hdr[0:])
	count := ne.Uint64(hdr[8:])
	if count == 0 {
		return nil, nil
	}
	capacity := uint64(0)
	if pgcnt > 0 {
		capacity = (min(pgcnt, 1<<40)*PageSize - FLBHeaderSize) / FLBSerSize
	}
	if count > capacity {
		return nil, decodeErr(pa, syscall.EINVAL, "FLB count %d exceeds the %d entries %d pages hold", count, capacity, pgcnt)
	}
	// Entries are decoded one by one, so a count larger than the memory
	// present allocates no more than the entries that are there.
	var flbs []FLBSer
	var b [FLBSerSize]byte
	for i := uint64(0); i < count; i++ {
		epa := pa + FLBHeaderSize + i*FLBSerSize
		if err := r.m.ReadAt(b[:], epa); err != nil {
			return nil, decodeErr(epa, ErrBadAddress, "FLB entry %d outside preserved memory", i)
		}
		var f FLBSer
		_ = f.Decode(b[:])
		flbs = append(flbs, f)
	}
	return flbs, nil
}
