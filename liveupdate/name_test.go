//go:build linux

package liveupdate

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestValidateName(t *testing.T) {
	// 21 three-byte runes fill exactly 63 bytes.
	cjk63 := strings.Repeat("日", 21)
	for _, tc := range []struct {
		what string
		name string
		ok   bool
	}{
		{"empty", "", false},
		{"1 byte", "a", true},
		{"63 bytes", strings.Repeat("n", 63), true},
		{"64 bytes", strings.Repeat("n", 64), false},
		{"1000 bytes", strings.Repeat("n", 1000), false},
		{"NUL only", "\x00", false},
		{"NUL at start", "\x00abc", false},
		{"NUL in the middle", "ab\x00cd", false},
		{"NUL at end", "abcd\x00", false},
		{"NUL at byte 63 of 64", strings.Repeat("n", 63) + "\x00", false},
		{"non-ASCII UTF-8", "séance-Ωμέγα", true},
		{"63 bytes of 21 runes", cjk63, true},
		{"64 bytes of 22 runes", cjk63 + "x", false},
		{"bytes that are not UTF-8", "\xff\xfe", true},
		{"spaces and slashes", "a b/c", true},
	} {
		err := ValidateName(tc.name)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: ValidateName(%q) = %v, want nil", tc.what, tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: ValidateName(%q) = nil, want an error", tc.what, tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalidName) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: ValidateName(%q) = %v, which does not match both ErrInvalidName and EINVAL", tc.what, tc.name, err)
		}
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: ValidateName(%q) = %v matches unrelated errors", tc.what, tc.name, err)
		}
		if !strings.Contains(err.Error(), "invalid session name") {
			t.Errorf("%s: error text %q does not say what is wrong", tc.what, err)
		}
	}
}

// ValidateName must accept exactly what the kernel's create path accepts:
// what NameFromBytes reads back from a field PutName filled.
func TestValidateNameAgreesWithKernelRead(t *testing.T) {
	for _, name := range []string{"a", strings.Repeat("n", 63), "日本", "\xff"} {
		var b [SessionNameLen]byte
		if err := PutName(&b, name); err != nil {
			t.Fatalf("PutName(%q): %v", name, err)
		}
		if got, err := NameFromBytes(&b); err != nil || got != name {
			t.Errorf("kernel reads %q as %q, %v", name, got, err)
		}
	}
}

func TestValidateNameErrorText(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"", `invalid session name "": empty`},
		{strings.Repeat("n", 64), `invalid session name "` + strings.Repeat("n", 64) + `": longer than 63 bytes (64)`},
		{"ab\x00cd", `invalid session name "ab\x00cd": holds a NUL byte at 2`},
	} {
		if err := ValidateName(tc.name); err == nil || err.Error() != tc.want {
			t.Errorf("ValidateName(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestBadNameFailsBeforeRequest checks that the typed API refuses a bad
// name itself. Each device answers a request with its own error
// (/dev/null ENOTTY, a closed Device ErrClosed, a bad fd EBADF), so a bad
// name that got as far as a request would come back as that error instead.
func TestBadNameFailsBeforeRequest(t *testing.T) {
	null, bogus := openDevNull(t), bogusDevice(t)
	devs := []struct {
		what    string
		d       *Device
		reached error // what a request on it gives
	}{
		{"/dev/null", null, ioctlErr(null.Fd(), CmdCreateSession.Request())}, // ENOTTY (ENOSYS under qemu-user)
		{"closed device", closedDevice(t), ErrClosed},
		{"bad fd", bogus, ioctlErr(bogus.Fd(), CmdCreateSession.Request())}, // EBADF (ENOSYS under qemu-user)
	}
	for _, dev := range devs {
		if dev.reached == nil {
			t.Fatalf("a request on %s succeeded", dev.what)
		}
	}
	type call struct {
		op string
		f  func(*Device, string) (*Session, error)
	}
	calls := []call{
		{"create session", (*Device).CreateSession},
		{"retrieve session", (*Device).RetrieveSession},
	}
	bad := []string{"", strings.Repeat("x", 64), "\x00", "a\x00", "\x00a", "a\x00b"}
	for _, dev := range devs {
		for _, c := range calls {
			// Control: a good name does reach the device.
			s, err := c.f(dev.d, "good")
			if s != nil || !errors.Is(err, dev.reached) {
				t.Errorf("%s %s(good) = %v, %v; want %v", dev.what, c.op, s, err, dev.reached)
			}
			for _, name := range bad {
				s, err := c.f(dev.d, name)
				if s != nil {
					t.Errorf("%s %s(%q) returned a session", dev.what, c.op, name)
				}
				if !errors.Is(err, ErrInvalidName) || !errors.Is(err, syscall.EINVAL) {
					t.Errorf("%s %s(%q) = %v, want ErrInvalidName", dev.what, c.op, name, err)
				}
				if errors.Is(err, dev.reached) {
					t.Errorf("%s %s(%q) = %v: the request reached the device", dev.what, c.op, name, err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%s %s(%q): %T is not *Error", dev.what, c.op, name, err)
				}
				if string(e.Op) != c.op || e.Session != name || e.Token != 0 {
					t.Errorf("%s %s(%q): Error{Op: %q, Session: %q, Token: %d}", dev.what, c.op, name, e.Op, e.Session, e.Token)
				}
				if n := strings.Count(err.Error(), strconv.Quote(name)); n != 1 {
					t.Errorf("%s %s(%q): %q names it %d times", dev.what, c.op, name, err, n)
				}
			}
		}
	}
	// The closed device's fd stays -1, and /dev/null's stays open.
	if fd := devs[1].d.Fd(); fd != -1 {
		t.Errorf("closed device Fd() = %d, want -1", fd)
	}
	if fd := devs[0].d.Fd(); fd < 0 {
		t.Errorf("/dev/null device Fd() = %d", fd)
	}
}
