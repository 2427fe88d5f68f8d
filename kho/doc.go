// Package kho encodes and decodes, byte for byte, the state that the Linux
// Live Update Orchestrator (LUO) hands to the next kernel through KHO
// (Kexec HandOver). It works on a simulated preserved physical memory
// (Memory) and needs neither a kernel nor the fake in package liveupdate, so
// a tool such as an inspector can use it on its own.
//
// # Byte order and page size
//
// Every ABI structure is __packed and stored in the byte order of the
// machine that wrote it (binary.NativeEndian here): little-endian on x86-64
// and arm64, big-endian on s390x. Live update between kernels of different
// byte order or page size is not supported by the kernel, and pages are
// PageSize (4 KiB) bytes.
//
// # LUO state (compatible "luo-v5")
//
// The KHO subtree "LUO" is a raw 32-byte struct luo_ser in a page of its
// own:
//
//	off size field
//	  0    8 compatible   "luo-v5" NUL-padded (the reader compares 8 bytes
//	                      with strncmp, so byte 7 is not checked)
//	  8    8 liveupdate_num
//	 16    8 sessions_pa  first session block, 0 when there are no sessions
//	 24    8 flbs_pa      FLB header page
//
// Sessions, and the files of each session, live in chains of linked blocks.
// A block is one page: a 16-byte header {next u64 (PA of the next block, 0
// ends the chain), count u64 (entries used in this block)} followed by the
// entries back to back. A block holds (4096-16)/entry size entries: 51
// session entries of 80 bytes or 63 file entries of 64 bytes. The writer
// fills a block before starting the next one; the kernel's chain of
// session blocks can also end in an empty block (count 0), the trace of
// Linux 7.2's duplicate-create bug (State.SessionBlocks), which the next
// kernel rejects at boot.
//
//	struct luo_session_ser (80 B): name[64] (NUL-terminated, at most 63
//	    bytes), files u64 (first file block, 0 when there are none),
//	    count u64 (number of files)
//	struct luo_file_ser (64 B): compatible[48] (handler, e.g. "memfd-v2"),
//	    data u64 (handler handle; memfd: PA of struct memfd_luo_ser),
//	    token u64
//
// The FLB area at flbs_pa is one page: a header {pgcnt u64 (1), count u64}
// and count entries struct luo_flb_ser {name[48], data u64, count u64}
// (64 B), at most 63.
//
// ReadLUO applies the kernel's rules (kernel/liveupdate/kho_block.c,
// luo_core.c, luo_session.c, luo_file.c): compatible must be "luo-v5";
// a block chain must be acyclic (the kernel uses Floyd's algorithm, whose
// step limit also rejects acyclic chains of 20001 blocks or more); a chain
// of 10001 to 20000 blocks fails with ENOSPC when the 10001st block is
// added; each of the first 10000 blocks must have count in 1..capacity; the
// file count of a session must equal the sum of its block counts; session
// names must be unique (EEXIST). A session whose files PA is 0 has no files
// whatever its count says (the kernel only warns). On top of the kernel's
// rules, which trust the previous kernel, the reader requires blocks to be
// page aligned and every block page to be used once in the whole state (the
// kernel restores, then frees, each block page once), and FLB counts to fit
// the FLB area. These keep the work and the memory a decode takes
// proportional to the pages it is given. The FLB area, which the kernel
// does not read at boot, is decoded last, and an error in it leaves the
// sessions decoded (see ReadLUO).
//
// # memfd (compatibles "memfd-v1" and "memfd-v2")
//
// Linux 7.2 has only the memfd-v2 handler (mm/memfd_luo.c), which also
// keeps the file's seals; Linux 6.19 had only memfd-v1. A kernel has one
// memfd handler, so files of the other compatible cannot be restored.
//
// A memfd file's data handle is the PA of a struct memfd_luo_ser in a page
// of its own:
//
//	memfd-v1 (40 B): pos u64 @0, size u64 @8, nr_folios u64 @16,
//	    folios struct kho_vmalloc @24
//	memfd-v2 (48 B): pos u64 @0, size u64 @8, seals u32 @16,
//	    flags u32 @20 (written 0, not read), nr_folios u64 @24,
//	    folios struct kho_vmalloc @32
//	struct kho_vmalloc (16 B): first u64 (PA of the first chunk),
//	    total_pages u32, flags u16 (1 = VM_ALLOC, 2 = huge vmap), order u16
//
// The kho_vmalloc describes a vmalloc area of total_pages pages holding
// nr_folios entries struct memfd_luo_folio_ser (16 B): a 64-bit word with
// the bit-fields pfn:52 and flags:12 (bit 0 DIRTY, bit 1 UPTODATE), then
// index u64 (page offset in the file). C bit-fields follow the byte order:
// on little-endian machines the word is pfn | flags<<52, on big-endian
// machines (s390x) it is pfn<<12 | flags. The area's pages are listed in a
// chain of one-page chunks: next u64 (PA of the next chunk, 0 ends the
// chain) then up to 511 page PAs, ended by a 0 entry when the chunk is not
// full. The kernel starts a new, possibly empty, chunk as soon as one is
// full. A zero-size file has nr_folios 0 and a zeroed kho_vmalloc.
//
// The kernel pins every page of the file before preserving it, which
// allocates the holes: a preserved memfd has one folio per page of its size.
// WriteMemfd does the same, with page-sized folios.
//
// # Restoring each page once
//
// The next kernel restores a preserved page once (kho_restore_page clears
// its KHO magic): luo_ser at boot, the session blocks when the first open
// has deserialized the sessions, a memfd's folio array, folios and
// memfd_luo_ser when it is retrieved (or, never retrieved, when its
// session is finished), file blocks when their session is finished. A
// second claim of a page fails: EINVAL for a folio array page, EIO for a
// folio. ReadMemfd decodes one file as if it were the first; a Restorer
// keeps the pages restored across the files of a boot, so pages two files
// share, or a folio in LUO's own blocks, fail as in the kernel, and
// decoding every file of an image takes work linear in its size.
//
// # Image container
//
// An Image (memory plus the PA of luo_ser) can be stored in a file so that
// the two stages of an agent can run in different processes. All header
// integers are little-endian:
//
//	off size field
//	  0    8 magic "GOLUOKHO"
//	  8    2 version (1)
//	 10    1 byte order of the page contents: 1 little, 2 big
//	 11    5 reserved, zero
//	 16    8 root PA (struct luo_ser)
//	 24    8 page count (at most MaxImagePages; WriteTo refuses more
//	         with ErrImageTooLarge, ReadImage with ErrImageFormat)
//	 32      page count times {PA u64, 4096 bytes}, PAs page aligned,
//	         non-zero and strictly ascending; nothing follows
//
// ReadImage rejects an image whose page byte order is not the machine's.
//
// # Errors
//
// Decoders never panic on hostile bytes and return a *DecodeError naming
// the physical address and the rule broken; it wraps the errno the kernel
// would give (syscall.EINVAL, ENOSPC, EEXIST, EIO, EOPNOTSUPP, ENOENT), or
// ErrBadAddress (which wraps syscall.EFAULT) for an address outside the
// memory. Container errors wrap ErrImageFormat.
//
// A Memory is not safe for concurrent use.
package kho
