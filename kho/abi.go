package kho

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/go-luo/luo/internal/cstr"
)

// Identifiers and sizes of the luo-v5 ABI (include/linux/kho/abi/luo.h,
// include/linux/kho/abi/block.h).
const (
	// KHOEntryName is the name of the KHO subtree holding struct luo_ser.
	KHOEntryName = "LUO"
	// LUOCompatible is the compatible string of the layout this package
	// reads and writes.
	LUOCompatible = "luo-v5"

	// LUOSerSize is the size of struct luo_ser.
	LUOSerSize = 32
	// BlockHeaderSize is the size of struct kho_block_header_ser.
	BlockHeaderSize = 16
	// SessionSerSize is the size of struct luo_session_ser.
	SessionSerSize = 80
	// FileSerSize is the size of struct luo_file_ser.
	FileSerSize = 64
	// FLBHeaderSize is the size of struct luo_flb_header_ser.
	FLBHeaderSize = 16
	// FLBSerSize is the size of struct luo_flb_ser.
	FLBSerSize = 64

	// SessionsPerBlock is the number of session entries a block holds.
	SessionsPerBlock = (PageSize - BlockHeaderSize) / SessionSerSize
	// FilesPerBlock is the number of file entries a block holds.
	FilesPerBlock = (PageSize - BlockHeaderSize) / FileSerSize
	// MaxBlocks is KHO_MAX_BLOCKS, the most blocks a chain may have.
	MaxBlocks = 10000
	// MaxFLBs is LUO_FLB_MAX, the most FLB entries the one-page FLB area
	// holds.
	MaxFLBs = (PageSize - FLBHeaderSize) / FLBSerSize

	// SessionNameLength is LIVEUPDATE_SESSION_NAME_LENGTH, the size of the
	// name field including its terminating NUL.
	SessionNameLength = 64
	// CompatLength is LIVEUPDATE_HNDL_COMPAT_LENGTH (and
	// LIVEUPDATE_FLB_COMPAT_LENGTH), the size of a handler or FLB
	// compatible field including its terminating NUL.
	CompatLength = 48

	luoCompatLen = 8 // ALIGN(sizeof("luo-v5"), 8)
)

var ne = binary.NativeEndian

// putCString stores s in the fixed-size field dst, NUL-padded. A string as
// long as the field fills it without a terminator; a longer one is cut.
func putCString(dst []byte, s string) {
	n := copy(dst, s)
	clear(dst[n:])
}

func short(what string, n, want int) error {
	return fmt.Errorf("kho: %s needs %d bytes, got %d: %w", what, want, n, syscall.EINVAL)
}

// LUOSer is struct luo_ser, the root of the LUO state (32 bytes).
type LUOSer struct {
	Compatible    string // "luo-v5"
	LiveupdateNum uint64
	SessionsPA    uint64 // first session block, 0 if there are no sessions
	FLBsPA        uint64 // FLB header
}

// Encode returns the 32-byte encoding of s in native byte order.
func (s *LUOSer) Encode() []byte {
	b := make([]byte, LUOSerSize)
	putCString(b[0:luoCompatLen], s.Compatible)
	ne.PutUint64(b[8:], s.LiveupdateNum)
	ne.PutUint64(b[16:], s.SessionsPA)
	ne.PutUint64(b[24:], s.FLBsPA)
	return b
}

// Decode sets s from the first 32 bytes of b. Compatible is taken up to the
// first NUL of its 8-byte field. It fails only if b is too short.
func (s *LUOSer) Decode(b []byte) error {
	if len(b) < LUOSerSize {
		return short("luo_ser", len(b), LUOSerSize)
	}
	s.Compatible = cstr.String(b[0:luoCompatLen])
	s.LiveupdateNum = ne.Uint64(b[8:])
	s.SessionsPA = ne.Uint64(b[16:])
	s.FLBsPA = ne.Uint64(b[24:])
	return nil
}

// SessionSer is struct luo_session_ser (80 bytes).
type SessionSer struct {
	Name      string // at most 63 bytes
	FilesPA   uint64 // first file block, 0 if the session has no files
	FileCount uint64 // total number of files
}

// Encode returns the 80-byte encoding of s in native byte order.
func (s *SessionSer) Encode() []byte {
	b := make([]byte, SessionSerSize)
	s.put(b)
	return b
}

func (s *SessionSer) put(b []byte) {
	putCString(b[0:SessionNameLength], s.Name)
	ne.PutUint64(b[64:], s.FilesPA)
	ne.PutUint64(b[72:], s.FileCount)
}

// Decode sets s from the first 80 bytes of b. Like the kernel's strscpy
// into a 64-byte buffer, Name stops at the first NUL and has at most 63
// bytes. It fails only if b is too short.
func (s *SessionSer) Decode(b []byte) error {
	if len(b) < SessionSerSize {
		return short("luo_session_ser", len(b), SessionSerSize)
	}
	s.Name = cstr.String(b[0 : SessionNameLength-1])
	s.FilesPA = ne.Uint64(b[64:])
	s.FileCount = ne.Uint64(b[72:])
	return nil
}

// FileSer is struct luo_file_ser (64 bytes).
type FileSer struct {
	Compatible string // handler, e.g. "memfd-v2"; at most 47 bytes
	Data       uint64 // handler handle (memfd: PA of struct memfd_luo_ser)
	Token      uint64 // the user's token
}

// Encode returns the 64-byte encoding of f in native byte order.
func (f *FileSer) Encode() []byte {
	b := make([]byte, FileSerSize)
	f.put(b)
	return b
}

func (f *FileSer) put(b []byte) {
	putCString(b[0:CompatLength], f.Compatible)
	ne.PutUint64(b[48:], f.Data)
	ne.PutUint64(b[56:], f.Token)
}

// Decode sets f from the first 64 bytes of b. Compatible stops at the
// first NUL (or takes all 48 bytes if there is none). It fails only if b is
// too short.
func (f *FileSer) Decode(b []byte) error {
	if len(b) < FileSerSize {
		return short("luo_file_ser", len(b), FileSerSize)
	}
	f.Compatible = cstr.String(b[0:CompatLength])
	f.Data = ne.Uint64(b[48:])
	f.Token = ne.Uint64(b[56:])
	return nil
}

// FLBSer is struct luo_flb_ser (64 bytes), a preserved file-lifecycle-bound
// global object.
type FLBSer struct {
	Name  string // compatible string of the FLB, at most 47 bytes
	Data  uint64 // opaque handle from the FLB's preserve()
	Count uint64 // number of preserved files depending on it
}

// Encode returns the 64-byte encoding of f in native byte order.
func (f *FLBSer) Encode() []byte {
	b := make([]byte, FLBSerSize)
	f.put(b)
	return b
}

func (f *FLBSer) put(b []byte) {
	putCString(b[0:CompatLength], f.Name)
	ne.PutUint64(b[48:], f.Data)
	ne.PutUint64(b[56:], f.Count)
}

// Decode sets f from the first 64 bytes of b. It fails only if b is too
// short.
func (f *FLBSer) Decode(b []byte) error {
	if len(b) < FLBSerSize {
		return short("luo_flb_ser", len(b), FLBSerSize)
	}
	f.Name = cstr.String(b[0:CompatLength])
	f.Data = ne.Uint64(b[48:])
	f.Count = ne.Uint64(b[56:])
	return nil
}
