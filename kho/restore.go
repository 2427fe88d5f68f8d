package kho

// Restorer restores the pages of one preserved memory the way the next
// kernel does, across every file of one boot. KHO restores a preserved
// page once: kho_restore_page (kernel/liveupdate/kexec_handover.c) checks
// the page's KHO magic and clears it, so a second restore of the same page,
// like a restore of a page that was never preserved, fails. What a page
// holds is not enough to tell it apart: two memfds whose folio arrays name
// the same page, or a folio naming a page of LUO's own session blocks,
// decode fine one file at a time. A Restorer keeps the pages restored so
// far, so the second claim fails wherever it comes from.
//
// Because each page is claimed at most once, decoding every file of an
// image through one Restorer takes work linear in the image's size,
// however many file entries name the same state.
//
// A Restorer is not safe for concurrent use.
type Restorer struct {
	m *Memory
	// restored holds the restored pages of the runs of m from index lo
	// on (restored[k] those of m.runs[lo+k]); it grows to cover the runs
	// claims reach, so a Restorer of one file costs the runs of that file.
	restored []runBits
	lo       int
	last     int // index in m.runs of the last claim's run
	work     int // entries and pages visited, for tests
}

// runBits is a set of page indices of one run: those below 64 in low, the
// others in high (nil until one is added), so that a small run's set
// needs no allocation.
type runBits struct {
	low  uint64
	high []uint64
}

func (b *runBits) has(i uint64) bool {
	if i < 64 {
		return b.low&(1<<i) != 0
	}
	i -= 64
	return i/64 < uint64(len(b.high)) && b.high[i/64]&(1<<(i%64)) != 0
}

// add adds page i of a run of n pages.
func (b *runBits) add(i, n uint64) {
	if i < 64 {
		b.low |= 1 << i
		return
	}
	i -= 64
	if i/64 >= uint64(len(b.high)) {
		// The run may have grown since: size for its pages now.
		b.high = append(b.high, make([]uint64, (n-64+63)/64-uint64(len(b.high)))...)
	}
	b.high[i/64] |= 1 << (i % 64)
}

// NewRestorer returns a Restorer of m with no page restored.
func NewRestorer(m *Memory) *Restorer {
	return &Restorer{m: m}
}

// Memory returns the memory r restores from.
func (r *Restorer) Memory() *Memory { return r.m }

// Restored reports whether the page holding pa has been restored.
func (r *Restorer) Restored(pa uint64) bool {
	pfn := pa >> pageShift
	i := r.m.findRun(pfn)
	if i < r.lo || i >= r.lo+len(r.restored) {
		return false // not in memory (i < 0), or no page of its run restored
	}
	return r.restored[i-r.lo].has(pfn - r.m.runs[i].pfn)
}

// claim is kho_restore_page of the page holding pa: it fails (false) when
// the page is not in the memory or already restored.
func (r *Restorer) claim(pa uint64) (ok, present bool) {
	r.work++
	m := r.m
	pfn := pa >> pageShift
	i := r.last
	if i >= len(m.runs) || pfn < m.runs[i].pfn || pfn >= m.runs[i].end() {
		if i = m.findRun(pfn); i < 0 {
			return false, false
		}
		r.last = i
	}
	run := &m.runs[i]
	j := pfn - run.pfn
	if run.isFreed(j) {
		return false, false
	}
	b := r.bits(i)
	if b.has(j) {
		return false, true
	}
	b.add(j, run.n)
	return true, true
}

// bits returns the restored pages of run i, growing r.restored to cover it.
func (r *Restorer) bits(i int) *runBits {
	switch {
	case len(r.restored) == 0:
		r.lo = i
		r.restored = make([]runBits, 1, 8)
	case i < r.lo:
		// Grow down by at least the size covered, so that claims going
		// down through the runs take amortised constant time.
		lo := max(0, min(i, r.lo-len(r.restored)))
		grown := make([]runBits, r.lo-lo+len(r.restored), r.lo-lo+cap(r.restored))
		copy(grown[r.lo-lo:], r.restored)
		r.restored, r.lo = grown, lo
	case i >= r.lo+len(r.restored):
		r.restored = append(r.restored, make([]runBits, i+1-r.lo-len(r.restored))...)
	}
	return &r.restored[i-r.lo]
}

// RestoreLUO restores the pages of the LUO state at root that the kernel
// has restored once the first open of /dev/liveupdate has deserialized the
// sessions: the luo_ser page (kho_restore_free in luo_early_startup,
// kernel/liveupdate/luo_core.c) and every block of the session chain
// (kho_block_set_destroy at the end of luo_session_deserialize,
// kernel/liveupdate/luo_session.c). The kernel only warns when such a
// restore fails, so RestoreLUO does not fail; it follows at most
// 2·MaxBlocks+1 blocks.
//
// File blocks are restored later, when their session is finished
// (RestoreBlocks). RestoreLUO returns the PA of each session's first file
// block, in chain order: for a state ReadLUO accepts, the order of
// State.Sessions.
func (r *Restorer) RestoreLUO(root uint64) (files []uint64) {
	r.claim(root)
	var ls LUOSer
	buf := make([]byte, LUOSerSize)
	if r.m.ReadAt(buf, root) != nil || ls.Decode(buf) != nil {
		return nil
	}
	visited := make(map[uint64]struct{})
	for pa := ls.SessionsPA; pa != 0 && len(visited) < 2*MaxBlocks+1; {
		blk := r.m.span(pa, PageSize)
		if _, cycle := visited[pa]; cycle || blk == nil || pa%PageSize != 0 {
			break
		}
		visited[pa] = struct{}{}
		count := min(ne.Uint64(blk[8:]), SessionsPerBlock)
		for i := uint64(0); i < count; i++ {
			var ss SessionSer
			_ = ss.Decode(blk[BlockHeaderSize+i*SessionSerSize:])
			files = append(files, ss.FilesPA)
		}
		// The kernel reads every entry, then frees the blocks; a block
		// already restored (shared with luo_ser, say) only warns.
		r.claim(pa)
		pa = ne.Uint64(blk[0:])
	}
	return files
}

// RestoreBlocks restores the blocks of the chain starting at head, as
// kho_block_set_destroy does for an incoming block set (a session's file
// blocks, when luo_file_finish has finished its files). Failures are the
// kernel's warnings: RestoreBlocks stops at a block outside memory or
// already restored, and follows at most 2·MaxBlocks+1 blocks.
func (r *Restorer) RestoreBlocks(head uint64) {
	for pa, n := head, 0; pa != 0 && n < 2*MaxBlocks+1; n++ {
		hdr := r.m.span(pa, BlockHeaderSize)
		if hdr == nil || pa%PageSize != 0 {
			return
		}
		if ok, _ := r.claim(pa); !ok {
			return
		}
		pa = ne.Uint64(hdr[0:])
	}
}

// ReadMemfd is memfd_luo_retrieve's reading of the struct memfd_luo_ser
// at pa (see the package-level ReadMemfd for its rules), restoring, in the
// kernel's order, the folio array's vmalloc pages and chunks, every folio,
// then the memfd_luo_ser page. A page restored before, by this file or any
// other, fails as the kernel's restore does: EINVAL for a page of the
// folio array (kho_restore_vmalloc returns NULL), EIO for a folio
// (kho_restore_folio returns NULL), and only a warning for the
// memfd_luo_ser page (kho_restore_free), so a second file naming the same
// memfd_luo_ser fails on its folio array. As in the kernel, pages restored
// before a failure stay restored, and after a failing folio the remaining
// folios are restored and dropped (memfd_luo_retrieve_folios' put_folios).
func (r *Restorer) ReadMemfd(compat string, pa uint64) (*MemfdSer, error) {
	ms, err := r.readMemfd(compat, pa)
	if _, _, _, known := memfdLayout(compat); known && pa != 0 {
		r.claim(pa) // kho_restore_free(ser), on success and failure alike
	}
	return ms, err
}

// DiscardMemfd is memfd_luo_finish of a file never retrieved: it restores
// the folio array and every folio of the memfd_luo_ser at pa, to free
// them (closing the Backing of backed folios), then the memfd_luo_ser
// page. The kernel only warns when one of
// these restores fails, so DiscardMemfd does not fail; like the kernel,
// it skips the folios when the folio array cannot be restored.
func (r *Restorer) DiscardMemfd(compat string, pa uint64) {
	serSize, nrOff, vmOff, ok := memfdLayout(compat)
	if !ok || pa == 0 {
		return
	}
	ser := make([]byte, serSize)
	if r.m.ReadAt(ser, pa) != nil {
		return
	}
	if nr := ne.Uint64(ser[nrOff:]); nr != 0 {
		var vm kvmalloc
		vm.decode(ser[vmOff:])
		if area, err := r.restoreVmalloc(pa+uint64(vmOff), &vm); err == nil {
			n := min(nr, uint64(len(area))*(PageSize/FolioSerSize))
			var seen [2]uint64 // the run whose Backing was closed last: [first, end)
			for i := uint64(0); i < n; i++ {
				off := i * FolioSerSize
				var f FolioSer
				_ = f.Decode(r.m.span(area[off/PageSize]+off%PageSize, FolioSerSize))
				if f.PFN != 0 {
					r.claim(f.PFN << pageShift)
					if f.PFN < seen[0] || f.PFN >= seen[1] {
						seen = [2]uint64{f.PFN, r.m.closeBacking(f.PFN)}
					}
				}
			}
		}
	}
	r.claim(pa)
}
