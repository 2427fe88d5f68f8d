//go:build linux

package fakewire

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAddrString(t *testing.T) {
	for _, tc := range []struct {
		a    Addr
		want string
	}{
		{Addr{ID: 0x2a, Session: true, Name: "vm-1"}, "luo-fake 000000000000002a [luo_session] vm-1"},
		{Addr{ID: 0xffffffffffffffff}, "luo-fake ffffffffffffffff [luo_device]"},
		{Addr{ID: 1, Name: "ignored for a device"}, "luo-fake 0000000000000001 [luo_device]"},
		{Addr{ID: 0, Session: true}, "luo-fake 0000000000000000 [luo_session] "},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want Addr
		ok   bool
	}{
		{"luo-fake 000000000000002a [luo_session] vm-1", Addr{ID: 0x2a, Session: true, Name: "vm-1"}, true},
		{"luo-fake 00000000000000AB [luo_device]", Addr{ID: 0xab}, true},
		{"luo-fake 0000000000000001 [luo_session] a b ] c", Addr{ID: 1, Session: true, Name: "a b ] c"}, true},
		{"luo-fake 0000000000000001 [luo_session] ", Addr{ID: 1, Session: true}, true},
		{"luo-fake 0000000000000001 [luo_device] ", Addr{}, false},
		{"luo-fake 0000000000000001 [luo_session]", Addr{}, false},
		{"luo-fake 000000000000001 [luo_device]", Addr{}, false},
		{"luo-fake 000000000000000g [luo_device]", Addr{}, false},
		{"luo-fake +000000000000001 [luo_device]", Addr{}, false},
		{"luo-fake 0x00000000000001 [luo_device]", Addr{}, false},
		{"luo-fake 0000000000000001_[luo_device]", Addr{}, false},
		{"luo-fake0000000000000001 [luo_device]", Addr{}, false},
		{"", Addr{}, false},
		{"luo-fake ", Addr{}, false},
		{"@luo-fake 0000000000000001 [luo_device]", Addr{}, false},
	} {
		got, ok := ParseAddr(tc.s)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseAddr(%q) = %+v, %v; want %+v, %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	f.Add(uint64(0x2a), true, "vm-1", "luo-fake 000000000000002a [luo_session] vm-1")
	f.Add(uint64(0), false, "", "luo-fake 0000000000000000 [luo_device]")
	f.Add(^uint64(0), true, "", "luo-fake FFFFFFFFFFFFFFFF [luo_session] x")
	f.Add(uint64(1), true, "a\x00b [luo_device]", "luo-fake 0000000000000001 [luo_device] ")
	f.Add(uint64(7), false, "x", "luo-fake 00000000000000 7 [luo_device]")
	f.Add(uint64(7), true, "日本\xff", "")
	f.Fuzz(func(t *testing.T, id uint64, session bool, name, raw string) {
		// Addr.String -> ParseAddr round trip.
		a := Addr{ID: id, Session: session, Name: name}
		if !session {
			a.Name = "" // a device's address has no name
		}
		s := a.String()
		got, ok := ParseAddr(s)
		if !ok || got != a {
			t.Fatalf("ParseAddr(%q) = %+v, %v; want %+v", s, got, ok, a)
		}
		if !strings.HasPrefix(s, AddrPrefix) || len(s) < len(AddrPrefix)+17 {
			t.Fatalf("String() = %q", s)
		}

		// Any string: no panic, and what parses prints back the same,
		// but for the case of the hex digits.
		p, ok := ParseAddr(raw)
		if !ok {
			if p != (Addr{}) {
				t.Fatalf("ParseAddr(%q) failed but returned %+v", raw, p)
			}
			return
		}
		if !p.Session && p.Name != "" {
			t.Fatalf("ParseAddr(%q) = device with name %q", raw, p.Name)
		}
		i := len(AddrPrefix)
		want := raw[:i] + strings.ToLower(raw[i:i+16]) + raw[i+16:]
		if back := p.String(); back != want {
			t.Fatalf("ParseAddr(%q).String() = %q, want %q", raw, back, want)
		}
		if again, ok := ParseAddr(p.String()); !ok || again != p {
			t.Fatalf("ParseAddr(String(%+v)) = %+v, %v", p, again, ok)
		}
	})
}

func TestRequestRoundTrip(t *testing.T) {
	arg := []byte{1, 2, 3, 4, 5}
	var h [RequestHeaderLen]byte
	EncodeRequest(&h, 0x2000BA40, FlagArgFD, len(arg))
	req, flags, got, err := DecodeRequest(append(h[:], arg...))
	if err != nil || req != 0x2000BA40 || flags != FlagArgFD || !bytes.Equal(got, arg) {
		t.Fatalf("DecodeRequest = %#x, %#x, % x, %v", req, flags, got, err)
	}
	for _, bad := range [][]byte{
		nil,
		h[:RequestHeaderLen-1],
		append(h[:], arg[:4]...), // length says 5
		append(h[:], append(arg, 0)...),
	} {
		if _, _, _, err := DecodeRequest(bad); err != ErrMalformed {
			t.Errorf("DecodeRequest(% x) = %v, want ErrMalformed", bad, err)
		}
	}
	h[0] ^= 1
	if _, _, _, err := DecodeRequest(append(h[:], arg...)); err != ErrMalformed {
		t.Errorf("DecodeRequest with bad magic = %v, want ErrMalformed", err)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	var h [ReplyHeaderLen]byte
	EncodeReply(&h, unix.EEXIST, ReplyNewFD)
	errno, flags, payload, err := DecodeReply(append(h[:], 9, 8))
	if err != nil || errno != unix.EEXIST || flags != ReplyNewFD || !bytes.Equal(payload, []byte{9, 8}) {
		t.Fatalf("DecodeReply = %v, %#x, % x, %v", errno, flags, payload, err)
	}
	if _, _, _, err := DecodeReply(h[:ReplyHeaderLen-1]); err != ErrMalformed {
		t.Errorf("DecodeReply(short) = %v, want ErrMalformed", err)
	}
}

func TestPeer(t *testing.T) {
	want := Addr{ID: 0x5eed0000 | uint64(unix.Getpid()), Session: true, Name: "peer test"}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, ok := Peer(fd); ok {
		t.Error("Peer of an unbound socket: ok")
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + want.String()}); err != nil {
		t.Skipf("bind: %v", err)
	}
	if got, ok := Peer(fd); !ok || got != want {
		t.Errorf("Peer = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := Peer(-1); ok {
		t.Error("Peer(-1): ok")
	}
}

// FuzzDecodeMessages feeds arbitrary bytes to the message decoders: they
// return an error or parts of the input, never panic, and what a request
// encodes decodes back.
func FuzzDecodeMessages(f *testing.F) {
	var h [RequestHeaderLen]byte
	EncodeRequest(&h, 0xBA40, FlagArgFD, 3)
	f.Add(append(h[:], 1, 2, 3))
	f.Add([]byte{})
	f.Add(make([]byte, RequestHeaderLen))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if req, flags, arg, err := DecodeRequest(msg); err == nil {
			var h [RequestHeaderLen]byte
			EncodeRequest(&h, req, flags, len(arg))
			if string(append(h[:], arg...)) != string(msg) {
				t.Fatalf("request %x does not round-trip", msg)
			}
		}
		if errno, flags, payload, err := DecodeReply(msg); err == nil {
			var h [ReplyHeaderLen]byte
			EncodeReply(&h, errno, flags)
			if string(append(h[:], payload...)) != string(msg) {
				t.Fatalf("reply %x does not round-trip", msg)
			}
		}
	})
}
