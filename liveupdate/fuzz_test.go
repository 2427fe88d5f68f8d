package liveupdate

import (
	"bytes"
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
)

// request returns the size bytes a encodes to, with extra appended.
func request(a codec, size int, extra ...byte) []byte {
	b := make([]byte, size)
	a.Encode(b)
	return append(b, extra...)
}

func withSize(b []byte, size uint32) []byte {
	b = bytes.Clone(b)
	binary.NativeEndian.PutUint32(b, size)
	return b
}

func addDecodeSeeds(f *testing.F) {
	var name [SessionNameLen]byte
	copy(name[:], "vm-1")
	create := request(&CreateSessionArgs{Size: 72, FD: -1, Name: name}, 72)
	preserve := request(&PreserveFDArgs{Size: 16, FD: 3, Token: 0x1234}, 16)
	retrieve := request(&RetrieveFDArgs{Size: 16, FD: -1, Token: 7}, 16)
	finish := request(&FinishArgs{Size: 8}, 8)
	getName := request(&GetNameArgs{Size: 72}, 72)
	var full [SessionNameLen]byte
	copy(full[:], strings.Repeat("f", 64))

	for _, s := range []struct {
		c Command
		b []byte
	}{
		// Well-formed.
		{CmdCreateSession, create},
		{CmdRetrieveSession, create},
		{CmdPreserveFD, preserve},
		{CmdRetrieveFD, retrieve},
		{CmdFinish, finish},
		{CmdGetName, getName},
		// Larger than the kernel's struct, zero tail: accepted.
		{CmdPreserveFD, withSize(request(&PreserveFDArgs{FD: 3, Token: 1}, 16, 0, 0, 0, 0, 0, 0, 0, 0), 24)},
		{CmdFinish, withSize(append(bytes.Clone(finish), make([]byte, 64)...), 72)},
		// Non-zero tail: E2BIG.
		{CmdFinish, withSize(append(bytes.Clone(finish), 0, 0, 1), 11)},
		{CmdGetName, withSize(append(bytes.Clone(getName), 0xff), 73)},
		// Size below min_size: EINVAL; the pre-release tree's 16-byte GET_NAME.
		{CmdCreateSession, withSize(create, 71)},
		{CmdGetName, withSize(getName[:16], 16)},
		{CmdFinish, withSize(finish, 0)},
		// Size beyond the buffer: EFAULT.
		{CmdRetrieveFD, withSize(retrieve, 17)},
		{CmdCreateSession, withSize(create, 0xffffffff)},
		// Too short to hold a size: EFAULT.
		{CmdFinish, nil},
		{CmdPreserveFD, []byte{16, 0, 0}},
		// Bad names.
		{CmdCreateSession, request(&CreateSessionArgs{Size: 72}, 72)},
		{CmdRetrieveSession, request(&CreateSessionArgs{Size: 72, Name: full}, 72)},
		// GET_NAME with reserved set; unknown commands.
		{CmdGetName, request(&GetNameArgs{Size: 72, Reserved: 1}, 72)},
		{0x44, preserve},
		{0x02, create},
		{0xff, []byte{0, 0, 0, 0}},
	} {
		f.Add(byte(s.c), s.b)
	}
}

// FuzzDecodeRequest runs the kernel's checks on arbitrary request bytes, as
// the fake kernel does, and checks each step against what the kernel would
// do. It must never panic.
func FuzzDecodeRequest(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, cmd byte, user []byte) {
		c := Command(cmd)

		// Decode reads raw bytes without panicking, EFAULT when short.
		if ksize := int(c.Size()); ksize > 0 {
			err := decoderFor(c).Decode(user)
			if (err == syscall.EFAULT) != (len(user) < ksize) || (err != nil && err != syscall.EFAULT) {
				t.Fatalf("%v: Decode(%d bytes) = %v", c, len(user), err)
			}
		}

		ksize := int(c.Size())
		if ksize == 0 || len(user) < ksize {
			return // an unknown command, or too few bytes to decode
		}
		buf := bytes.Clone(user[:ksize])

		// The struct decodes, and encodes to the bytes it came from.
		a := decoderFor(c)
		if err := a.Decode(buf); err != nil {
			t.Fatalf("%v: Decode(copy) = %v", c, err)
		}
		out := make([]byte, len(buf))
		a.Encode(out)
		if !bytes.Equal(out, buf) {
			t.Fatalf("%v: Encode(Decode(x)) = % x\nwant % x", c, out, buf)
		}
		if !bytes.Equal(memBytes(a), buf) {
			t.Fatalf("%v: decoded struct in memory % x, want % x", c, memBytes(a), buf)
		}
		if name := nameOf(a); name != nil {
			checkName(t, name)
		}
	})
}

func decoderFor(c Command) codec {
	switch c {
	case CmdCreateSession:
		return new(CreateSessionArgs)
	case CmdRetrieveSession:
		return new(RetrieveSessionArgs)
	case CmdPreserveFD:
		return new(PreserveFDArgs)
	case CmdRetrieveFD:
		return new(RetrieveFDArgs)
	case CmdFinish:
		return new(FinishArgs)
	case CmdGetName:
		return new(GetNameArgs)
	}
	panic("no struct for " + c.String())
}

func nameOf(a codec) *[SessionNameLen]byte {
	switch a := a.(type) {
	case *CreateSessionArgs:
		return &a.Name
	case *RetrieveSessionArgs:
		return &a.Name
	case *GetNameArgs:
		return &a.Name
	}
	return nil
}

// checkName checks NameFromBytes against the kernel's rule, strnlen of 1
// to 63, and against ValidateName and PutName.
func checkName(t *testing.T, field *[SessionNameLen]byte) {
	name, err := NameFromBytes(field)
	n := bytes.IndexByte(field[:], 0)
	switch {
	case n < 0:
		if err != syscall.EINVAL || name != string(field[:]) {
			t.Fatalf("no NUL: NameFromBytes = %q, %v", name, err)
		}
	case n == 0:
		if err != syscall.EINVAL || name != "" {
			t.Fatalf("empty: NameFromBytes = %q, %v", name, err)
		}
	default:
		if err != nil || name != string(field[:n]) {
			t.Fatalf("NameFromBytes = %q, %v; want %q", name, err, field[:n])
		}
	}
	if (ValidateName(name) == nil) != (err == nil) {
		t.Fatalf("NameFromBytes(%q) = %v but ValidateName = %v", name, err, ValidateName(name))
	}
	if err != nil {
		return
	}
	var again [SessionNameLen]byte
	if err := PutName(&again, name); err != nil {
		t.Fatalf("PutName(%q) = %v", name, err)
	}
	if !bytes.Equal(again[:n+1], field[:n+1]) || !allZero(again[n:]) {
		t.Fatalf("PutName(%q) = % x", name, again)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
