package luoabi

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/go-luo/luo/liveupdate"
)

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FuzzKernelChecks runs a raw request through the kernel's checks in the
// order the kernel applies them and compares each answer with its
// definition.
func FuzzKernelChecks(f *testing.F) {
	for _, c := range Commands {
		b := make([]byte, c.Size())
		binary.NativeEndian.PutUint32(b, c.Size())
		f.Add(byte(c), b)
		f.Add(byte(c), append(bytes.Clone(b), 0, 0, 0, 1))
		f.Add(byte(c), b[:len(b)/2])
	}
	f.Add(byte(0x44), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, cmd byte, user []byte) {
		c := liveupdate.Command(cmd)
		size, err := ReadSize(user)
		if len(user) < 4 {
			if err != syscall.EFAULT {
				t.Fatalf("ReadSize(%d bytes) = %d, %v; want EFAULT", len(user), size, err)
			}
			return
		}
		if err != nil || size != binary.NativeEndian.Uint32(user) {
			t.Fatalf("ReadSize = %d, %v", size, err)
		}

		err = CheckSize(size, MinSize(c))
		if (err != nil) != (size < MinSize(c)) || (err != nil && err != syscall.EINVAL) {
			t.Fatalf("CheckSize(%d, %d) = %v", size, MinSize(c), err)
		}
		if err != nil {
			return
		}

		buf := bytes.Repeat([]byte{0xEE}, int(c.Size()))
		err = CopyStructFromUser(buf, user, size)
		switch {
		case size > c.Size() && len(user) > int(c.Size()) && !allZero(user[c.Size():min(uint64(size), uint64(len(user)))]):
			if err != syscall.E2BIG {
				t.Fatalf("non-zero tail: CopyStructFromUser = %v, want E2BIG", err)
			}
			return
		case uint64(size) > uint64(len(user)):
			if err != syscall.EFAULT {
				t.Fatalf("size %d > %d bytes: CopyStructFromUser = %v, want EFAULT", size, len(user), err)
			}
			return
		case size > c.Size() && !allZero(user[c.Size():size]):
			if err != syscall.E2BIG {
				t.Fatalf("non-zero tail: CopyStructFromUser = %v, want E2BIG", err)
			}
			return
		case err != nil:
			t.Fatalf("CopyStructFromUser(size %d, %d bytes) = %v, want nil", size, len(user), err)
		}
		n := min(size, c.Size())
		if !bytes.Equal(buf[:n], user[:n]) || !allZero(buf[n:]) {
			t.Fatalf("copy of %d bytes: % x from % x", size, buf, user[:n])
		}
		if got := ReplyLen(size, c.Size()); got != n {
			t.Fatalf("ReplyLen(%d, %d) = %d, want %d", size, c.Size(), got, n)
		}
		if c.Size() == 0 {
			return // an unknown command: nothing to decode
		}

	})
}
