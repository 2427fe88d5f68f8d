//go:build linux

package fake_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// An errno of 0 is no fault: every Fail method refuses it and arms
// nothing, so the step it named works (a preserve preserves).
func TestFaultErrnoZeroRefused(t *testing.T) {
	checkFDs(t)
	k := newKernel(t)
	for what, err := range map[string]error{
		"FailPreserve(1, 0)":    k.FailPreserve(1, 0),
		"FailPreserve(-1, EIO)": k.FailPreserve(-1, unix.EIO),
		"FailPreserve(1, 4096)": k.FailPreserve(1, 4096),
		"FailFreeze(s, 0)":      k.FailFreeze("s", 0),
		"FailRetrieve(s, 1, 0)": k.FailRetrieve("s", 1, 0),
		"FailRestore(0)":        k.FailRestore(0),
		"FailRestore(1<<20)":    k.FailRestore(1 << 20),
	} {
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s: %v, want an error matching EINVAL", what, err)
		}
	}
	d := open(t, k)
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := memfd(t, "kept")
	defer m.Close()
	if err := s.Preserve(m, 1); err != nil {
		t.Fatalf("preserve after the refused faults: %v", err)
	}
	if st := k.State(); len(st.Outgoing) != 1 || len(st.Outgoing[0].Files) != 1 {
		t.Fatalf("preserve reported success but the session holds %+v", st.Outgoing)
	}
	if err := k.FailPreserve(0, 0); err != nil {
		t.Errorf("FailPreserve(0, 0), which disarms: %v", err)
	}
	kexec(t, k, d)
	d = open(t, k)
	in, err := d.RetrieveSession("s")
	if err != nil {
		t.Fatalf("retrieve session after the refused FailRestore and FailFreeze: %v", err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatalf("retrieve after the refused FailRetrieve: %v", err)
	}
	f.Close()
}
