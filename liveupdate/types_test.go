package liveupdate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// structBytes returns the in-memory bytes of *p.
func structBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// codec is the Encode/Decode pair every argument struct has.
type codec interface {
	Encode([]byte)
	Decode([]byte) error
}

func TestArgSizes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		got   uintptr
		want  uintptr
		cmd   Command
		cmdSz uint32
	}{
		{"CreateSessionArgs", unsafe.Sizeof(CreateSessionArgs{}), SizeofCreateSession, CmdCreateSession, 72},
		{"RetrieveSessionArgs", unsafe.Sizeof(RetrieveSessionArgs{}), SizeofRetrieveSession, CmdRetrieveSession, 72},
		{"PreserveFDArgs", unsafe.Sizeof(PreserveFDArgs{}), SizeofPreserveFD, CmdPreserveFD, 16},
		{"RetrieveFDArgs", unsafe.Sizeof(RetrieveFDArgs{}), SizeofRetrieveFD, CmdRetrieveFD, 16},
		{"FinishArgs", unsafe.Sizeof(FinishArgs{}), SizeofFinish, CmdFinish, 8},
		{"GetNameArgs", unsafe.Sizeof(GetNameArgs{}), SizeofGetName, CmdGetName, 72},
	} {
		if tc.got != tc.want {
			t.Errorf("unsafe.Sizeof(%s) = %d, Sizeof constant %d", tc.name, tc.got, tc.want)
		}
		if uint32(tc.want) != tc.cmdSz {
			t.Errorf("Sizeof constant of %s = %d, kernel's sizeof is %d", tc.name, tc.want, tc.cmdSz)
		}
		if got := tc.cmd.Size(); got != tc.cmdSz {
			t.Errorf("%v.Size() = %d, want %d", tc.cmd, got, tc.cmdSz)
		}
	}
}

func TestArgOffsets(t *testing.T) {
	var cs CreateSessionArgs
	var rs RetrieveSessionArgs
	var pf PreserveFDArgs
	var rf RetrieveFDArgs
	var fi FinishArgs
	var gn GetNameArgs
	for _, tc := range []struct {
		field string
		got   uintptr
		want  uintptr
	}{
		{"CreateSessionArgs.Size", unsafe.Offsetof(cs.Size), 0},
		{"CreateSessionArgs.FD", unsafe.Offsetof(cs.FD), 4},
		{"CreateSessionArgs.Name", unsafe.Offsetof(cs.Name), 8},
		{"RetrieveSessionArgs.Size", unsafe.Offsetof(rs.Size), 0},
		{"RetrieveSessionArgs.FD", unsafe.Offsetof(rs.FD), 4},
		{"RetrieveSessionArgs.Name", unsafe.Offsetof(rs.Name), 8},
		{"PreserveFDArgs.Size", unsafe.Offsetof(pf.Size), 0},
		{"PreserveFDArgs.FD", unsafe.Offsetof(pf.FD), 4},
		{"PreserveFDArgs.Token", unsafe.Offsetof(pf.Token), 8},
		{"RetrieveFDArgs.Size", unsafe.Offsetof(rf.Size), 0},
		{"RetrieveFDArgs.FD", unsafe.Offsetof(rf.FD), 4},
		{"RetrieveFDArgs.Token", unsafe.Offsetof(rf.Token), 8},
		{"FinishArgs.Size", unsafe.Offsetof(fi.Size), 0},
		{"FinishArgs.Reserved", unsafe.Offsetof(fi.Reserved), 4},
		{"GetNameArgs.Size", unsafe.Offsetof(gn.Size), 0},
		{"GetNameArgs.Reserved", unsafe.Offsetof(gn.Reserved), 4},
		{"GetNameArgs.Name", unsafe.Offsetof(gn.Name), 8},
	} {
		if tc.got != tc.want {
			t.Errorf("offsetof %s = %d, kernel's is %d", tc.field, tc.got, tc.want)
		}
	}
	if n := len(cs.Name); n != 64 {
		t.Errorf("len(Name) = %d, want 64", n)
	}
	if n := len(gn.Name); n != SessionNameLen {
		t.Errorf("len(GetNameArgs.Name) = %d, want 64", n)
	}
}

// randomArgs returns one value of every argument struct filled from r, and
// the kernel size of each.
func randomArgs(r *rand.Rand) []struct {
	v    codec
	size int
} {
	var name [SessionNameLen]byte
	for i := range name {
		name[i] = byte(r.Uint32())
	}
	return []struct {
		v    codec
		size int
	}{
		{&CreateSessionArgs{Size: r.Uint32(), FD: int32(r.Uint32()), Name: name}, SizeofCreateSession},
		{&RetrieveSessionArgs{Size: r.Uint32(), FD: int32(r.Uint32()), Name: name}, SizeofRetrieveSession},
		{&PreserveFDArgs{Size: r.Uint32(), FD: int32(r.Uint32()), Token: r.Uint64()}, SizeofPreserveFD},
		{&RetrieveFDArgs{Size: r.Uint32(), FD: int32(r.Uint32()), Token: r.Uint64()}, SizeofRetrieveFD},
		{&FinishArgs{Size: r.Uint32(), Reserved: r.Uint32()}, SizeofFinish},
		{&GetNameArgs{Size: r.Uint32(), Reserved: r.Uint32(), Name: name}, SizeofGetName},
	}
}

// memBytes returns the in-memory bytes of a codec value.
func memBytes(v codec) []byte {
	switch a := v.(type) {
	case *CreateSessionArgs:
		return structBytes(a)
	case *RetrieveSessionArgs:
		return structBytes(a)
	case *PreserveFDArgs:
		return structBytes(a)
	case *RetrieveFDArgs:
		return structBytes(a)
	case *FinishArgs:
		return structBytes(a)
	case *GetNameArgs:
		return structBytes(a)
	}
	panic("unknown type")
}

// zeroOf returns a new zero value of v's type.
func zeroOf(v codec) codec {
	switch v.(type) {
	case *CreateSessionArgs:
		return new(CreateSessionArgs)
	case *RetrieveSessionArgs:
		return new(RetrieveSessionArgs)
	case *PreserveFDArgs:
		return new(PreserveFDArgs)
	case *RetrieveFDArgs:
		return new(RetrieveFDArgs)
	case *FinishArgs:
		return new(FinishArgs)
	case *GetNameArgs:
		return new(GetNameArgs)
	}
	panic("unknown type")
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		for _, a := range randomArgs(r) {
			b := make([]byte, a.size+3) // extra bytes must stay untouched
			for i := range b {
				b[i] = 0xA5
			}
			a.v.Encode(b)
			if !bytes.Equal(b[a.size:], []byte{0xA5, 0xA5, 0xA5}) {
				t.Fatalf("%T.Encode wrote past its %d bytes: % x", a.v, a.size, b[a.size:])
			}
			d := zeroOf(a.v)
			if err := d.Decode(b); err != nil {
				t.Fatalf("%T.Decode: %v", d, err)
			}
			if !bytes.Equal(memBytes(d), memBytes(a.v)) {
				t.Fatalf("%T round trip:\n got %+v\nwant %+v", d, d, a.v)
			}
		}
	}
}

// TestEncodeIsMemoryLayout proves the encoding is the machine's own: what
// Encode writes is what the kernel would read from the struct in memory.
func TestEncodeIsMemoryLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		for _, a := range randomArgs(r) {
			b := make([]byte, a.size)
			a.v.Encode(b)
			if mem := memBytes(a.v); !bytes.Equal(b, mem) {
				t.Fatalf("%T.Encode = % x\nin memory      % x", a.v, b, mem)
			}
			// And the other way: Decode of the memory image gives the value.
			d := zeroOf(a.v)
			if err := d.Decode(memBytes(a.v)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(memBytes(d), memBytes(a.v)) {
				t.Fatalf("%T.Decode(memory) = %+v, want %+v", d, d, a.v)
			}
		}
	}
}

// bigEndianArch lists the GOARCHes whose byte order is big-endian,
// independently of encoding/binary.
var bigEndianArch = map[string]bool{
	"s390x": true, "ppc64": true, "mips": true, "mips64": true, "sparc64": true,
	"ppc": true, "armbe": true, "arm64be": true, "mips64p32": true,
}

func nativeIsLittle() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

func TestNativeEndianMatchesArch(t *testing.T) {
	if nativeIsLittle() == bigEndianArch[runtime.GOARCH] {
		t.Fatalf("binary.NativeEndian is little=%v on %s", nativeIsLittle(), runtime.GOARCH)
	}
}

// TestEncodeKnownBytes spells out the bytes of known values in both byte
// orders and checks Encode writes the native ones (run under qemu-s390x
// for the big-endian case).
func TestEncodeKnownBytes(t *testing.T) {
	little := nativeIsLittle()
	pick := func(le, be []byte) []byte {
		if little {
			return le
		}
		return be
	}
	check := func(what string, v codec, want []byte) {
		t.Helper()
		b := make([]byte, len(want))
		v.Encode(b)
		if !bytes.Equal(b, want) {
			t.Errorf("%s: Encode = % x, want % x (little-endian=%v)", what, b, want, little)
		}
		d := zeroOf(v)
		if err := d.Decode(want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(memBytes(d), memBytes(v)) {
			t.Errorf("%s: Decode(% x) = %+v, want %+v", what, want, d, v)
		}
	}

	pf := &PreserveFDArgs{Size: SizeofPreserveFD, FD: 0x01020304, Token: 0x1122334455667788}
	check("PreserveFDArgs", pf, pick(
		[]byte{0x10, 0, 0, 0, 0x04, 0x03, 0x02, 0x01, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
		[]byte{0, 0, 0, 0x10, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
	))
	rf := &RetrieveFDArgs{Size: SizeofRetrieveFD, FD: -1, Token: 0xdead}
	check("RetrieveFDArgs", rf, pick(
		[]byte{0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xad, 0xde, 0, 0, 0, 0, 0, 0},
		[]byte{0, 0, 0, 0x10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xde, 0xad},
	))
	fi := &FinishArgs{Size: SizeofFinish, Reserved: 0x0a0b0c0d}
	check("FinishArgs", fi, pick(
		[]byte{8, 0, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a},
		[]byte{0, 0, 0, 8, 0x0a, 0x0b, 0x0c, 0x0d},
	))

	cs := &CreateSessionArgs{Size: SizeofCreateSession, FD: 0x102}
	copy(cs.Name[:], "vm-1")
	wantCS := make([]byte, 72)
	copy(wantCS, pick([]byte{72, 0, 0, 0, 0x02, 0x01, 0, 0}, []byte{0, 0, 0, 72, 0, 0, 0x01, 0x02}))
	copy(wantCS[8:], "vm-1")
	check("CreateSessionArgs", cs, wantCS)
	check("RetrieveSessionArgs", (*RetrieveSessionArgs)(cs), wantCS)

	gn := &GetNameArgs{Size: SizeofGetName, Reserved: 1}
	copy(gn.Name[:], "name")
	wantGN := make([]byte, 72)
	copy(wantGN, pick([]byte{72, 0, 0, 0, 1, 0, 0, 0}, []byte{0, 0, 0, 72, 0, 0, 0, 1}))
	copy(wantGN[8:], "name")
	check("GetNameArgs", gn, wantGN)
}

func TestDecodeShort(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, a := range randomArgs(r) {
		for _, n := range []int{0, 1, 3, 4, 8, a.size - 1} {
			if n >= a.size {
				continue
			}
			d := zeroOf(a.v)
			err := d.Decode(make([]byte, n))
			if err != syscall.EFAULT {
				t.Errorf("%T.Decode(%d bytes) = %v, want EFAULT", d, n, err)
			}
		}
		d := zeroOf(a.v)
		if err := d.Decode(nil); err != syscall.EFAULT {
			t.Errorf("%T.Decode(nil) = %v, want EFAULT", d, err)
		}
		if err := d.Decode(make([]byte, a.size)); err != nil {
			t.Errorf("%T.Decode(%d bytes) = %v, want nil", d, a.size, err)
		}
	}
}

func TestEncodeShortPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, a := range randomArgs(r) {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%T.Encode into %d bytes did not panic", a.v, a.size-1)
				}
			}()
			a.v.Encode(make([]byte, a.size-1))
		}()
	}
}

func nameField(s string) *[SessionNameLen]byte {
	var b [SessionNameLen]byte
	copy(b[:], s)
	return &b
}

func TestNameFromBytes(t *testing.T) {
	n63 := strings.Repeat("a", 63)
	n64 := strings.Repeat("b", 64)
	for _, tc := range []struct {
		field   *[SessionNameLen]byte
		want    string
		wantErr error
	}{
		{nameField(""), "", syscall.EINVAL},
		{nameField("x"), "x", nil},
		{nameField("ab\x00cd"), "ab", nil},
		{nameField("\x00abc"), "", syscall.EINVAL},
		{nameField(n63), n63, nil},
		{nameField(n64), n64, syscall.EINVAL},
		{nameField("日本語"), "日本語", nil},
	} {
		got, err := NameFromBytes(tc.field)
		if got != tc.want || err != tc.wantErr {
			t.Errorf("NameFromBytes(%q) = %q, %v; want %q, %v", tc.field[:], got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPutName(t *testing.T) {
	for _, name := range []string{"x", "vm-1", strings.Repeat("z", 63), "日本語"} {
		var b [SessionNameLen]byte
		for i := range b {
			b[i] = 0xEE
		}
		if err := PutName(&b, name); err != nil {
			t.Fatalf("PutName(%q): %v", name, err)
		}
		want := make([]byte, SessionNameLen)
		copy(want, name)
		if !bytes.Equal(b[:], want) {
			t.Errorf("PutName(%q) = % x, want % x", name, b[:], want)
		}
		if got, err := NameFromBytes(&b); got != name || err != nil {
			t.Errorf("NameFromBytes(PutName(%q)) = %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("z", 64), "a\x00b"} {
		b := [SessionNameLen]byte(filled(SessionNameLen, 0xEE))
		err := PutName(&b, name)
		if !errors.Is(err, ErrInvalidName) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("PutName(%q) = %v, want ErrInvalidName/EINVAL", name, err)
		}
		if !bytes.Equal(b[:], filled(SessionNameLen, 0xEE)) {
			t.Errorf("PutName(%q) failed but changed the field: % x", name, b[:])
		}
	}
}

func TestCommandString(t *testing.T) {
	for _, tc := range []struct {
		c    Command
		want string
	}{
		{CmdCreateSession, "LIVEUPDATE_IOCTL_CREATE_SESSION"},
		{CmdRetrieveSession, "LIVEUPDATE_IOCTL_RETRIEVE_SESSION"},
		{CmdPreserveFD, "LIVEUPDATE_SESSION_PRESERVE_FD"},
		{CmdRetrieveFD, "LIVEUPDATE_SESSION_RETRIEVE_FD"},
		{CmdFinish, "LIVEUPDATE_SESSION_FINISH"},
		{CmdGetName, "LIVEUPDATE_SESSION_GET_NAME"},
		{0x44, "LIVEUPDATE_CMD(0x44)"},
		{0x02, "LIVEUPDATE_CMD(0x2)"},
		{0xff, "LIVEUPDATE_CMD(0xff)"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("Command(%#x).String() = %q, want %q", uint8(tc.c), got, tc.want)
		}
	}
}

func TestCommandProperties(t *testing.T) {
	for _, tc := range []struct {
		c      Command
		nr     uint8
		size   uint32
		device bool
	}{
		{CmdCreateSession, 0x00, 72, true},
		{CmdRetrieveSession, 0x01, 72, true},
		{CmdPreserveFD, 0x40, 16, false},
		{CmdRetrieveFD, 0x41, 16, false},
		{CmdFinish, 0x42, 8, false},
		{CmdGetName, 0x43, 72, false},
		{0x44, 0x44, 0, false},
		{0x02, 0x02, 0, true},
	} {
		if uint8(tc.c) != tc.nr {
			t.Errorf("%v = %#x, want %#x", tc.c, uint8(tc.c), tc.nr)
		}
		if got := tc.c.Size(); got != tc.size {
			t.Errorf("%v.Size() = %d, want %d", tc.c, got, tc.size)
		}
		if got := tc.c.Device(); got != tc.device {
			t.Errorf("%v.Device() = %v, want %v", tc.c, got, tc.device)
		}
	}
	if IoctlType != 0xBA || SessionNameLen != 64 || MaxNameLen != 63 {
		t.Errorf("uapi constants: type %#x, name len %d, max %d", IoctlType, SessionNameLen, MaxNameLen)
	}
}

func TestDirectionString(t *testing.T) {
	for _, tc := range []struct {
		d    Direction
		want string
	}{
		{Outgoing, "outgoing"}, {Incoming, "incoming"}, {AnyDirection, "any"},
		{0, "Direction(0x0)"}, {8, "Direction(0x8)"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("Direction(%d).String() = %q, want %q", uint8(tc.d), got, tc.want)
		}
	}
	if Outgoing&Incoming != 0 || AnyDirection != Outgoing|Incoming {
		t.Errorf("directions overlap: outgoing %d incoming %d any %d", Outgoing, Incoming, AnyDirection)
	}
}

func filled(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
