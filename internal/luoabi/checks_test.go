package luoabi

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/go-luo/luo/liveupdate"
)

func TestReadSize(t *testing.T) {
	for n := range 4 {
		if _, err := ReadSize(make([]byte, n)); err != syscall.EFAULT {
			t.Errorf("ReadSize(%d bytes) error = %v, want EFAULT", n, err)
		}
	}
	b := make([]byte, 8)
	binary.NativeEndian.PutUint32(b, 0xCAFE0048)
	b[4] = 0xff // not part of the size
	got, err := ReadSize(b)
	if err != nil || got != 0xCAFE0048 {
		t.Errorf("ReadSize = %#x, %v; want 0xcafe0048", got, err)
	}
	got, err = ReadSize(b[:4])
	if err != nil || got != 0xCAFE0048 {
		t.Errorf("ReadSize(4 bytes) = %#x, %v; want 0xcafe0048", got, err)
	}
}

func TestCheckSize(t *testing.T) {
	for _, tc := range []struct {
		size, min uint32
		want      error
	}{
		{0, 72, syscall.EINVAL},
		{71, 72, syscall.EINVAL},
		{72, 72, nil},
		{73, 72, nil},
		{0xffffffff, 72, nil},
		{15, 16, syscall.EINVAL},
		{16, 16, nil},
		{7, 8, syscall.EINVAL},
		{0, 0, nil},
	} {
		if got := CheckSize(tc.size, tc.min); got != tc.want {
			t.Errorf("CheckSize(%d, %d) = %v, want %v", tc.size, tc.min, got, tc.want)
		}
	}
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func filled(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

func TestCopyStructFromUser(t *testing.T) {
	t.Run("equal", func(t *testing.T) {
		dst := filled(16, 0xEE)
		user := seq(16, 1)
		if err := CopyStructFromUser(dst, user, 16); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, user) {
			t.Errorf("dst = % x, want % x", dst, user)
		}
	})
	t.Run("shorter zero-extends", func(t *testing.T) {
		dst := filled(72, 0xEE)
		user := seq(20, 1) // 4 bytes past usize must not be read
		if err := CopyStructFromUser(dst, user, 16); err != nil {
			t.Fatal(err)
		}
		want := append(seq(16, 1), make([]byte, 56)...)
		if !bytes.Equal(dst, want) {
			t.Errorf("dst = % x\nwant  % x", dst, want)
		}
	})
	t.Run("zero usize", func(t *testing.T) {
		dst := filled(8, 0xEE)
		if err := CopyStructFromUser(dst, nil, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, make([]byte, 8)) {
			t.Errorf("dst = % x, want zeros", dst)
		}
	})
	t.Run("longer zero tail", func(t *testing.T) {
		dst := filled(16, 0xEE)
		user := append(seq(16, 1), make([]byte, 64)...)
		if err := CopyStructFromUser(dst, user, uint32(len(user))); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, seq(16, 1)) {
			t.Errorf("dst = % x, want % x", dst, seq(16, 1))
		}
	})
	t.Run("longer non-zero tail", func(t *testing.T) {
		for _, at := range []int{16, 17, 40, 79} {
			dst := filled(16, 0xEE)
			user := append(seq(16, 1), make([]byte, 64)...)
			user[at] = 1
			if err := CopyStructFromUser(dst, user, uint32(len(user))); err != syscall.E2BIG {
				t.Errorf("non-zero byte at %d: error = %v, want E2BIG", at, err)
			}
		}
	})
	t.Run("non-zero beyond usize is not read", func(t *testing.T) {
		dst := filled(16, 0xEE)
		user := append(seq(16, 1), 0, 0, 0, 0, 9) // usize 20: the 9 is past it
		if err := CopyStructFromUser(dst, user, 20); err != nil {
			t.Fatalf("error = %v, want nil", err)
		}
		if !bytes.Equal(dst, seq(16, 1)) {
			t.Errorf("dst = % x", dst)
		}
	})
	t.Run("non-zero tail before the fault", func(t *testing.T) {
		// check_zeroed_user stops at the first non-zero byte: E2BIG,
		// though the request runs on into unreadable memory.
		for _, at := range []int{16, 40, 79} {
			user := append(seq(16, 1), make([]byte, 64)...)
			user[at] = 1
			if err := CopyStructFromUser(filled(16, 0xEE), user, 0xffffffff); err != syscall.E2BIG {
				t.Errorf("non-zero byte at %d, fault at 80: error = %v, want E2BIG", at, err)
			}
		}
		// A zero tail up to the fault: EFAULT.
		user := append(seq(16, 1), make([]byte, 64)...)
		if err := CopyStructFromUser(filled(16, 0xEE), user, 0xffffffff); err != syscall.EFAULT {
			t.Errorf("zero tail, fault at 80: error = %v, want EFAULT", err)
		}
	})
	t.Run("usize beyond user", func(t *testing.T) {
		for _, usize := range []uint32{17, 72, 1 << 20, 0xffffffff} {
			dst := filled(16, 0xEE)
			if err := CopyStructFromUser(dst, seq(16, 1), usize); err != syscall.EFAULT {
				t.Errorf("usize %d > 16 bytes: error = %v, want EFAULT", usize, err)
			}
		}
		if err := CopyStructFromUser(make([]byte, 8), nil, 4); err != syscall.EFAULT {
			t.Errorf("nil user with usize 4: error = %v, want EFAULT", err)
		}
	})
}

func TestReplyLen(t *testing.T) {
	for _, tc := range []struct{ usize, ksize, want uint32 }{
		{16, 72, 16}, {72, 72, 72}, {80, 72, 72}, {0, 8, 0}, {0xffffffff, 16, 16}, {8, 8, 8},
	} {
		if got := ReplyLen(tc.usize, tc.ksize); got != tc.want {
			t.Errorf("ReplyLen(%d, %d) = %d, want %d", tc.usize, tc.ksize, got, tc.want)
		}
	}
}

func TestCommandTables(t *testing.T) {
	for _, tc := range []struct {
		c   liveupdate.Command
		min uint32
		dir liveupdate.Direction
	}{
		{liveupdate.CmdCreateSession, 72, 0},
		{liveupdate.CmdRetrieveSession, 72, 0},
		{liveupdate.CmdPreserveFD, 16, liveupdate.Outgoing},
		{liveupdate.CmdRetrieveFD, 16, liveupdate.Incoming},
		{liveupdate.CmdFinish, 8, liveupdate.Incoming},
		{liveupdate.CmdGetName, 72, liveupdate.AnyDirection},
		{0x44, 0, 0},
		{0x02, 0, 0},
	} {
		if got := MinSize(tc.c); got != tc.min {
			t.Errorf("MinSize(%v) = %d, want %d", tc.c, got, tc.min)
		}
		if got := Direction(tc.c); got != tc.dir {
			t.Errorf("Direction(%v) = %v, want %v", tc.c, got, tc.dir)
		}
	}
	want := []liveupdate.Command{0x00, 0x01, 0x40, 0x41, 0x42, 0x43}
	if len(Commands) != len(want) {
		t.Fatalf("Commands = %v, want %v", Commands, want)
	}
	for i := range want {
		if Commands[i] != want[i] {
			t.Errorf("Commands[%d] = %#x, want %#x", i, uint8(Commands[i]), uint8(want[i]))
		}
	}
	if DeviceBase != 0 || SessionBase != 0x40 {
		t.Errorf("device base %#x, session base %#x", uint8(DeviceBase), uint8(SessionBase))
	}
	if GetNameMinSizeSeed != liveupdate.SizeofRetrieveFD {
		t.Errorf("GetNameMinSizeSeed = %d, want sizeof retrieve_fd %d", GetNameMinSizeSeed, liveupdate.SizeofRetrieveFD)
	}
	for _, c := range Commands {
		if c.Device() != (c < SessionBase) {
			t.Errorf("%v.Device() = %v, but its number is %#x", c, c.Device(), uint8(c))
		}
	}
}
