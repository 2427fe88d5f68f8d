//go:build linux

package liveupdate_test

import (
	"errors"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// On kernels without GET_NAME the request answers EINVAL, and Name reads
// the name from the fd instead.
func TestNameFallsBackWithoutGetName(t *testing.T) {
	for _, gen := range []fake.Generation{fake.Linux7_2, fake.Linux6_19} {
		t.Run(gen.String(), func(t *testing.T) {
			k := faketest.New(t, fake.WithGeneration(gen))
			dev := faketest.Open(t, k)
			const name = "fallback-name-of-sixty-three-bytes-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			if len(name) != liveupdate.MaxNameLen {
				t.Fatalf("test name is %d bytes", len(name))
			}
			s, err := dev.CreateSession(name)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			arg := make([]byte, liveupdate.SizeofGetName)
			(&liveupdate.GetNameArgs{Size: liveupdate.SizeofGetName}).Encode(arg)
			raw := s.RawIoctl(liveupdate.CmdGetName.Request(), arg)
			if gen == fake.Linux6_19 && !errors.Is(raw, unix.EINVAL) {
				t.Fatalf("GET_NAME on Linux 6.19: %v, want EINVAL", raw)
			}
			if gen == fake.Linux7_2 && raw != nil {
				t.Fatalf("GET_NAME on Linux 7.2: %v", raw)
			}
			got, err := s.Name()
			if err != nil || got != name {
				t.Fatalf("Name() = %q, %v; want %q", got, err, name)
			}
		})
	}
}
