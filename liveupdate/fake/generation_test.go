//go:build linux

package fake_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-luo/luo/kho"
	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

func TestGenerationString(t *testing.T) {
	for g, want := range map[fake.Generation]string{
		fake.Linux6_19: "linux-6.19",
		fake.Linux7_2:  "linux-7.2",
		0:              "Generation(0)",
		99:             "Generation(99)",
	} {
		if got := g.String(); got != want {
			t.Errorf("Generation(%d).String() = %q, want %q", int(g), got, want)
		}
	}
	if fake.DefaultGeneration != fake.Linux7_2 {
		t.Errorf("DefaultGeneration is %v, want linux-7.2", fake.DefaultGeneration)
	}
	for _, g := range []fake.Generation{0, 3} {
		if k, err := fake.New(fake.WithGeneration(g)); err == nil {
			k.Close()
			t.Errorf("New with %v succeeded", g)
		}
	}
}

// createSessions creates n outgoing sessions named prefix-0, prefix-1, ...
// and closes them when the test ends.
func createSessions(t *testing.T, d *liveupdate.Device, prefix string, n int) []*liveupdate.Session {
	t.Helper()
	var ss []*liveupdate.Session
	for i := range n {
		s, err := d.CreateSession(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			t.Fatalf("create session %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		ss = append(ss, s)
	}
	return ss
}

// retrieveAll retrieves the sessions prefix-i for i in idx from the next
// kernel and finishes them.
func retrieveAll(t *testing.T, k *fake.Kernel, prefix string, idx []int) {
	t.Helper()
	d := faketest.Open(t, k)
	defer d.Close()
	for _, i := range idx {
		s, err := d.RetrieveSession(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			t.Fatalf("retrieve session %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// Linux 7.2 grows its session block set before it finds a duplicate name
// and keeps the block: at 51·k sessions the next kernel panics on the empty
// block. The fake's machine then does not come up until Reboot.
func TestDuplicateCreateBreaksNextBoot(t *testing.T) {
	for _, n := range []int{51, 102} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			checkFDs(t)
			k := faketest.New(t)
			d := faketest.Open(t, k)
			ss := createSessions(t, d, "s", n)
			if got := k.State().SessionBlocks; got != n/51 {
				t.Fatalf("%d sessions in %d blocks, want %d", n, got, n/51)
			}
			for range 2 { // a second duplicate leaks nothing more
				_, err := d.CreateSession("s-0")
				mustErrno(t, err, unix.EEXIST, "create a duplicate")
			}
			if err := k.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			if got := k.State().SessionBlocks; got != n/51+1 {
				t.Fatalf("after the duplicate: %d blocks, want %d", got, n/51+1)
			}
			d.Close()

			err := k.Kexec()
			var pe *fake.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("kexec with the leaked block: %v, want a PanicError", err)
			}
			if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "session block count 0") {
				t.Errorf("kexec error %q: want the kernel's reason, an empty block (EINVAL)", err)
			}
			// The old kernel is gone, and nothing runs.
			_, err = ss[0].Name()
			mustErrno(t, err, unix.ESTALE, "a request on the old kernel's session")
			for range 2 {
				if _, err := k.Open(); !errors.As(err, &pe) {
					t.Fatalf("open on the machine that did not come up: %v, want the PanicError", err)
				}
				if err := k.Kexec(); !errors.As(err, &pe) {
					t.Fatalf("kexec on the machine that did not come up: %v, want the PanicError", err)
				}
			}
			if !k.State().Down {
				t.Error("State().Down is false")
			}
			sock := filepath.Join(t.TempDir(), "dev")
			stop, err := k.Listen(sock)
			if err != nil {
				t.Fatal(err)
			}
			_, err = liveupdate.Open(sock)
			mustErrno(t, err, unix.EIO, "open through Listen on the machine that did not come up")
			stop()
			for _, s := range ss {
				s.Close()
			}

			if err := k.Reboot(); err != nil {
				t.Fatal(err)
			}
			st := k.State()
			if st.Down || st.LiveupdateNum != 0 || len(st.Incoming) != 0 || len(st.Outgoing) != 0 {
				t.Fatalf("after the cold boot: %+v", st)
			}
			d = faketest.Open(t, k)
			_, err = d.RetrieveSession("s-0")
			mustErrno(t, err, unix.ENOENT, "retrieve a session after the cold boot")
		})
	}
}

// A successful create after the duplicate fills the leaked block, and a
// close shrinks the set: either way the next kernel boots.
func TestDuplicateCreateRepaired(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		checkFDs(t)
		k := faketest.New(t)
		d := faketest.Open(t, k)
		ss := createSessions(t, d, "s", 51)
		_, err := d.CreateSession("s-0")
		mustErrno(t, err, unix.EEXIST, "create a duplicate")
		ss = append(ss, createSessions(t, d, "t", 1)...)
		if got := k.State().SessionBlocks; got != 2 {
			t.Fatalf("52 sessions in %d blocks", got)
		}
		d.Close()
		if err := k.Kexec(); err != nil {
			t.Fatalf("kexec after the repair: %v", err)
		}
		for _, s := range ss {
			s.Close()
		}
		retrieveAll(t, k, "s", seq(0, 51))
	})
	t.Run("close", func(t *testing.T) {
		checkFDs(t)
		k := faketest.New(t)
		d := faketest.Open(t, k)
		ss := createSessions(t, d, "s", 51)
		_, err := d.CreateSession("s-0")
		mustErrno(t, err, unix.EEXIST, "create a duplicate")
		ss[50].Close()
		if got := k.State().SessionBlocks; got != 1 {
			t.Fatalf("50 sessions in %d blocks", got)
		}
		d.Close()
		if err := k.Kexec(); err != nil {
			t.Fatalf("kexec after the repair: %v", err)
		}
		for _, s := range ss {
			s.Close()
		}
		retrieveAll(t, k, "s", seq(0, 50))
		_, err = faketest.Open(t, k).RetrieveSession("s-50")
		mustErrno(t, err, unix.ENOENT, "the closed session")
	})
	// Not a multiple of 51: the block the duplicate grows is needed.
	t.Run("50", func(t *testing.T) {
		checkFDs(t)
		k := faketest.New(t)
		d := faketest.Open(t, k)
		ss := createSessions(t, d, "s", 50)
		_, err := d.CreateSession("s-0")
		mustErrno(t, err, unix.EEXIST, "create a duplicate")
		d.Close()
		if err := k.Kexec(); err != nil {
			t.Fatalf("kexec: %v", err)
		}
		for _, s := range ss {
			s.Close()
		}
		retrieveAll(t, k, "s", seq(0, 50))
	})
	// Linux 6.19's fixed array has no blocks to leak.
	t.Run("linux-6.19", func(t *testing.T) {
		checkFDs(t)
		k := faketest.New(t, fake.WithGeneration(fake.Linux6_19))
		d := faketest.Open(t, k)
		ss := createSessions(t, d, "s", 51)
		_, err := d.CreateSession("s-0")
		mustErrno(t, err, unix.EEXIST, "create a duplicate")
		if got := k.State().SessionBlocks; got != 0 {
			t.Fatalf("Linux 6.19 with %d session blocks", got)
		}
		d.Close()
		if err := k.Kexec(); err != nil {
			t.Fatalf("kexec: %v", err)
		}
		for _, s := range ss {
			s.Close()
		}
		retrieveAll(t, k, "s", seq(0, 51))
	})
}

// With an image file, the panicking image is written (a second stage would
// not boot either), and Reboot removes it.
func TestDuplicateCreateImageFile(t *testing.T) {
	checkFDs(t)
	path := filepath.Join(t.TempDir(), "image")
	k := faketest.New(t, fake.WithImageFile(path))
	d := faketest.Open(t, k)
	ss := createSessions(t, d, "s", 51)
	d.CreateSession("s-1")
	d.Close()
	var pe *fake.PanicError
	if err := k.Kexec(); !errors.As(err, &pe) {
		t.Fatalf("kexec: %v, want a PanicError", err)
	}
	for _, s := range ss {
		s.Close()
	}
	if _, err := fake.New(fake.WithImageFile(path)); !errors.As(err, &pe) {
		t.Fatalf("second stage boots from the image: %v, want a PanicError", err)
	}
	if err := k.Reboot(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("image file after the cold boot: %v", err)
	}
	k2 := faketest.New(t, fake.WithImageFile(path))
	if st := k2.State(); st.LiveupdateNum != 0 {
		t.Errorf("second stage after the cold boot: %+v", st)
	}
}

// Reboot of a running kernel drops its sessions.
func TestReboot(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, err := d.CreateSession("lost")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, "gone")
	defer m.Close()
	if err := s.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := k.Reboot(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Name()
	mustErrno(t, err, unix.ESTALE, "a request on the old kernel's session")
	if st := k.State(); len(st.Outgoing) != 0 || len(st.Incoming) != 0 {
		t.Fatalf("sessions after a cold boot: %+v", st)
	}
	if err := k.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	_, err = faketest.Open(t, k).RetrieveSession("lost")
	mustErrno(t, err, unix.ENOENT, "retrieve after a cold boot")
}

// FINISH with a non-zero reserved field: EINVAL in Linux 7.2, before
// anything is finished; not checked in Linux 6.19.
func TestFinishReserved(t *testing.T) {
	for _, g := range []fake.Generation{fake.Linux7_2, fake.Linux6_19} {
		t.Run(g.String(), func(t *testing.T) {
			checkFDs(t)
			k := faketest.New(t, fake.WithGeneration(g))
			d := faketest.Open(t, k)
			s, _ := d.CreateSession("fin")
			m := faketest.Memfd(t, "kept")
			defer m.Close()
			if err := s.Preserve(m, 1); err != nil {
				t.Fatal(err)
			}
			d.Close()
			faketest.Kexec(t, k, s)
			in, err := faketest.Open(t, k).RetrieveSession("fin")
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			arg := make([]byte, liveupdate.SizeofFinish)
			(&liveupdate.FinishArgs{Size: liveupdate.SizeofFinish, Reserved: 1}).Encode(arg)
			err = in.RawIoctl(liveupdate.CmdFinish.Request(), arg)
			if g == fake.Linux6_19 {
				if err != nil {
					t.Fatalf("FINISH with reserved 1 on Linux 6.19: %v", err)
				}
				return
			}
			mustErrno(t, err, unix.EINVAL, "FINISH with reserved 1")
			f, err := in.Retrieve(1)
			if err != nil {
				t.Fatalf("retrieve after the refused FINISH: %v", err)
			}
			f.Close()
			if err := in.Finish(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A kernel has one memfd handler: Linux 7.2's memfd-v2 cannot restore an
// image whose memfds say memfd-v1 (no handler: every open is EIO), and
// the other way round.
func TestMemfdOtherVersionEIO(t *testing.T) {
	for _, gens := range [][2]fake.Generation{{fake.Linux6_19, fake.Linux7_2}, {fake.Linux7_2, fake.Linux6_19}} {
		t.Run(gens[0].String()+"-to-"+gens[1].String(), func(t *testing.T) {
			checkFDs(t)
			img := filepath.Join(t.TempDir(), "image")
			k := faketest.New(t, fake.WithImageFile(img), fake.WithGeneration(gens[0]))
			d := faketest.Open(t, k)
			s, _ := d.CreateSession("m")
			m := faketest.Memfd(t, "data")
			defer m.Close()
			if err := s.Preserve(m, 1); err != nil {
				t.Fatal(err)
			}
			d.Close()
			faketest.Kexec(t, k, s)
			k2 := faketest.New(t, fake.WithImageFile(img), fake.WithGeneration(gens[1]))
			other := kho.MemfdV1
			if gens[0] == fake.Linux7_2 {
				other = kho.MemfdV2
			}
			for range 2 {
				_, err := k2.Open()
				mustErrno(t, err, unix.EIO, "open")
				mustErrno(t, err, unix.ENOENT, "the cause, no handler")
				if !strings.Contains(err.Error(), other) {
					t.Errorf("open error %q does not name %s", err, other)
				}
			}
		})
	}
}

// Seals: memfd-v2 (Linux 7.2) keeps them and lets more be added; memfd-v1
// (Linux 6.19) makes the file without sealing (F_SEAL_SEAL).
func TestKexecMemfdSeals(t *testing.T) {
	for _, g := range []fake.Generation{fake.Linux7_2, fake.Linux6_19} {
		t.Run(g.String(), func(t *testing.T) {
			checkFDs(t)
			k := faketest.New(t, fake.WithGeneration(g))
			d := faketest.Open(t, k)
			s, _ := d.CreateSession("sealed")
			fd, err := unix.MemfdCreate("sealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
			if err != nil {
				t.Fatal(err)
			}
			unix.Write(fd, []byte("x"))
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
				t.Fatal(err)
			}
			if err := s.PreserveFD(fd, 1); err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
			d.Close()
			faketest.Kexec(t, k, s)
			in, err := faketest.Open(t, k).RetrieveSession("sealed")
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			f, err := in.Retrieve(1)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
			if g == fake.Linux6_19 {
				if err != nil || seals != unix.F_SEAL_SEAL {
					t.Fatalf("seals %#x, %v; want F_SEAL_SEAL (memfd-v1 keeps none)", seals, err)
				}
				return
			}
			if err != nil || seals != unix.F_SEAL_SHRINK|unix.F_SEAL_GROW {
				t.Fatalf("seals %#x, %v; want SHRINK|GROW (0x6)", seals, err)
			}
			mustErrno(t, f.Truncate(4096), unix.EPERM, "grow the sealed file")
			_, err = f.WriteAt([]byte("yy"), 0)
			mustErrno(t, err, unix.EPERM, "write past the end of the sealed file")
			if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE); err != nil {
				t.Errorf("add a seal to the retrieved file: %v", err)
			}
		})
	}
}

// memfd_luo_preserve refuses a file of more than UINT_MAX pages (EFBIG),
// after the seals; the fake sees the size without touching the pages.
func TestPreserveHugeMemfdEFBIG(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	defer d.Close()
	s, _ := d.CreateSession("huge")
	defer s.Close()
	m := faketest.Memfd(t, "")
	defer m.Close()
	if err := m.Truncate((1<<32)*4096 + 1); err != nil {
		t.Skipf("cannot make a 16 TiB sparse memfd here: %v", err)
	}
	mustErrno(t, s.Preserve(m, 1), unix.EFBIG, "preserve a memfd of 2^32+1 pages")
	if err := m.Truncate((1<<32 - 1) * 4096); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 1); err != nil {
		t.Fatalf("preserve a memfd of 2^32-1 pages: %v", err)
	}
}

// The retrieved memfd is opened as memfd_alloc_file opens it: O_RDWR and
// O_LARGEFILE (a memfd's F_GETFL), mode 0777 whatever vm.memfd_noexec says
// (unless it forbids MFD_EXEC).
func TestRetrievedMemfdFlagsAndMode(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s, _ := d.CreateSession("flags")
	m := faketest.Memfd(t, "0123456789")
	if _, err := m.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := s.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	want, err := unix.FcntlInt(m.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	d.Close()
	faketest.Kexec(t, k, s)
	in, err := faketest.Open(t, k).RetrieveSession("flags")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || got != want || got&unix.O_ACCMODE != unix.O_RDWR {
		t.Errorf("F_GETFL %#x, %v; want %#x (O_RDWR|O_LARGEFILE)", got, err, want)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 4 {
		t.Errorf("position %d, want 4", pos)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	noexec, _ := os.ReadFile("/proc/sys/vm/memfd_noexec")
	if strings.TrimSpace(string(noexec)) != "2" && st.Mode&0o777 != 0o777 {
		t.Errorf("mode %#o, want 0777", st.Mode&0o777)
	}
}

// The kernel does not read the FLB area at boot: a corrupt one changes
// nothing for memfds.
func TestCorruptFLBAreaIgnored(t *testing.T) {
	checkFDs(t)
	path := oneMemfdImage(t, "flb", "intact")
	editImage(t, path, func(img *kho.Image, ls *kho.LUOSer, _ *kho.State) {
		var hdr [16]byte
		img.Mem.ReadAt(hdr[:], ls.FLBsPA)
		binaryPut(hdr[8:], 1000) // count past the page
		img.Mem.WriteAt(hdr[:], ls.FLBsPA)
	})
	k2 := faketest.New(t, fake.WithImageFile(path))
	in, err := faketest.Open(t, k2).RetrieveSession("flb")
	if err != nil {
		t.Fatalf("retrieve with a corrupt FLB area: %v", err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A preserved position past MAX_LFS_FILESIZE: vfs_setpos fails, the kernel
// ignores it, and the file starts at 0.
func TestRetrievePositionPastMaxLFS(t *testing.T) {
	checkFDs(t)
	path := oneMemfdImage(t, "pos", "abc")
	editImage(t, path, func(img *kho.Image, _ *kho.LUOSer, st *kho.State) {
		var pos [8]byte
		binaryPut(pos[:], 1<<63)
		img.Mem.WriteAt(pos[:], st.Sessions[0].Files[0].Data) // memfd_luo_ser.pos
	})
	k2 := faketest.New(t, fake.WithImageFile(path))
	in, err := faketest.Open(t, k2).RetrieveSession("pos")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatalf("retrieve with position 2^63: %v", err)
	}
	defer f.Close()
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
		t.Errorf("position %d, want 0", pos)
	}
}

// editImage rewrites the image file at path through edit.
// oneMemfdImage kexecs a fake with one session holding one memfd of data
// under token 1 into an image file, and returns the file's path.
func oneMemfdImage(t *testing.T, session, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image")
	k := faketest.New(t, fake.WithImageFile(path))
	d := faketest.Open(t, k)
	s, err := d.CreateSession(session)
	if err != nil {
		t.Fatal(err)
	}
	m := faketest.Memfd(t, data)
	defer m.Close()
	if err := s.Preserve(m, 1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	faketest.Kexec(t, k, s)
	return path
}

func editImage(t *testing.T, path string, edit func(img *kho.Image, ls *kho.LUOSer, st *kho.State)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := kho.ReadImage(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var root [kho.LUOSerSize]byte
	img.Mem.ReadAt(root[:], img.Root)
	var ls kho.LUOSer
	ls.Decode(root[:])
	st, err := kho.ReadLUO(img.Mem, img.Root)
	if err != nil {
		t.Fatal(err)
	}
	edit(img, &ls, st)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteTo(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

func binaryPut(b []byte, v uint64) { binary.NativeEndian.PutUint64(b, v) }

func TestGenerationText(t *testing.T) {
	for _, g := range []fake.Generation{fake.Linux6_19, fake.Linux7_2} {
		b, err := g.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got fake.Generation
		if err := got.UnmarshalText(b); err != nil || got != g {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, g)
		}
	}
	var g fake.Generation
	if err := g.UnmarshalText([]byte("linux-7.3")); err == nil {
		t.Error("UnmarshalText(linux-7.3) succeeded")
	}
	if _, err := fake.Generation(9).MarshalText(); err == nil {
		t.Error("MarshalText of Generation(9) succeeded")
	}
}
