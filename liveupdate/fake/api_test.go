package fake_test

import (
	"errors"
	"runtime"
	"syscall"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
)

// Every exported name exists on every system (this file has no build
// constraint, so `GOOS=darwin go vet` and `GOOS=windows go vet` compile
// it); off Linux, everything fails with liveupdate.ErrNotSupported.
func TestAPIOnEverySystem(t *testing.T) {
	var (
		_ fake.Handler        = nil
		_ fake.FileIdentifier = nil
		_ fake.HandlerFile
		_ fake.FileInfo
		_ fake.SessionInfo
		_ error = &fake.FrozenSizeError{}
		_ error = &fake.FrozenPagesError{}
		_ error = &fake.PanicError{Err: errors.New("x")}
		_       = fake.ErrKernelClosed
		_       = fake.ImageEnv
		_       = []int{fake.Linux7_2MaxSessions, fake.Linux7_2MaxFiles, fake.Linux6_19MaxSessions, fake.Linux6_19MaxFiles}
		_       = fake.DefaultGeneration.String()
		_       = []fake.Option{fake.FromEnv(), fake.WithImageFile(t.TempDir() + "/none"), fake.WithMaxFiles(8), fake.WithHandler(nil)}
	)
	k, err := fake.New(fake.WithGeneration(fake.Linux6_19), fake.WithMaxSessions(4))
	if runtime.GOOS != "linux" {
		if !errors.Is(err, liveupdate.ErrNotSupported) {
			t.Fatalf("New on %s: %v, want ErrNotSupported", runtime.GOOS, err)
		}
		k = &fake.Kernel{}
		for what, err := range map[string]error{
			"Kexec":           k.Kexec(),
			"Reboot":          k.Reboot(),
			"CheckInvariants": k.CheckInvariants(),
			"FailPreserve":    k.FailPreserve(1, syscall.EIO),
			"FailFreeze":      k.FailFreeze("s", syscall.EIO),
			"FailRetrieve":    k.FailRetrieve("s", 1, syscall.EIO),
			"FailRestore":     k.FailRestore(syscall.EIO),
			"CheckFaults":     k.CheckFaults(),
			"Close":           k.Close(),
		} {
			if !errors.Is(err, liveupdate.ErrNotSupported) {
				t.Errorf("%s: %v, want ErrNotSupported", what, err)
			}
		}
		if _, err := k.Open(); !errors.Is(err, liveupdate.ErrNotSupported) {
			t.Errorf("Open: %v", err)
		}
		if _, err := k.Listen("x"); !errors.Is(err, liveupdate.ErrNotSupported) {
			t.Errorf("Listen: %v", err)
		}
		_ = k.State()
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.FailRestore(syscall.EIO); err != nil {
		t.Fatal(err)
	}
	if st := k.State(); st.LiveupdateNum != 0 || st.DeviceOpen {
		t.Errorf("fresh kernel: %+v", st)
	}
	if err := k.CheckInvariants(); err != nil {
		t.Error(err)
	}
}
