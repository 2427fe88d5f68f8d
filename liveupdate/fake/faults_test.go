//go:build linux

package fake_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"

	"golang.org/x/sys/unix"
)

// An errno of 0 is no fault: every Fail method refuses it and arms
// nothing, so the step it named works (a preserve preserves).
func TestFaultErrnoZeroRefused(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
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
	d := faketest.Open(t, k)
	s, err := d.CreateSession("s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := faketest.Memfd(t, "kept")
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
	faketest.Kexec(t, k, d)
	d = faketest.Open(t, k)
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

// A FailFreeze naming no outgoing session, and a FailRetrieve naming a
// session or token the live update does not hand over, fail the Kexec
// with an UnmatchedFaultError that matches no errno (not even the
// fault's), before anything is frozen, and are disarmed.
func TestUnmatchedFaultsFailKexec(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s := preservedSession(t, d, "a", 1, "kept")
	for _, arm := range []struct {
		what string
		arm  func() error
	}{
		{`FailFreeze("no-such", EIO)`, func() error { return k.FailFreeze("no-such", unix.EIO) }},
		{`FailRetrieve("no-such", 1, EIO)`, func() error { return k.FailRetrieve("no-such", 1, unix.EIO) }},
		{`FailRetrieve("a", 2, EIO)`, func() error { return k.FailRetrieve("a", 2, unix.EIO) }},
		// String describes the session; it is not its name.
		{`FailFreeze("luo session \"a\"", EIO)`, func() error { return k.FailFreeze(s.String(), unix.EIO) }},
	} {
		if err := arm.arm(); err != nil {
			t.Fatalf("%s before the kexec: %v (the session may come later)", arm.what, err)
		}
		err := k.Kexec()
		var ue *fake.UnmatchedFaultError
		if !errors.As(err, &ue) || ue.Fault != arm.what {
			t.Fatalf("kexec with %s armed: %v, want an UnmatchedFaultError for it", arm.what, err)
		}
		if errors.Is(err, unix.EIO) {
			t.Errorf("%v matches the fault's EIO", err)
		}
		if err := s.Finish(); !errors.Is(err, unix.EINVAL) {
			t.Fatalf("the kexec refused for %s happened: finish on the outgoing session gave %v, want EINVAL", arm.what, err)
		}
	}
	if err := k.CheckFaults(); err != nil {
		t.Errorf("the refused faults are disarmed: %v", err)
	}
	d.Close()
	faketest.Kexec(t, k, s)
}

// In a kernel with incoming sessions, a FailRetrieve for one of them must
// name a token it holds, not yet retrieved; one for another name is for
// the next live update.
func TestFailRetrieveIncoming(t *testing.T) {
	checkFDs(t)
	k := faketest.New(t)
	d := faketest.Open(t, k)
	s := preservedSession(t, d, "a", 1, "kept")
	d.Close()
	faketest.Kexec(t, k, s)

	// Not yet restored (no open since the kexec), then restored.
	var ue *fake.UnmatchedFaultError
	if err := k.FailRetrieve("a", 2, unix.EIO); !errors.As(err, &ue) {
		t.Fatalf("FailRetrieve of a token incoming session a lacks, before the first open: %v, want an UnmatchedFaultError", err)
	}
	d = faketest.Open(t, k)
	if err := k.FailRetrieve("a", 2, unix.EIO); !errors.As(err, &ue) {
		t.Fatalf("FailRetrieve of a token incoming session a lacks: %v, want an UnmatchedFaultError", err)
	}
	in, err := d.RetrieveSession("a")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		t.Fatalf("retrieve after the refused faults: %v", err)
	}
	f.Close()
	if err := k.FailRetrieve("a", 1, unix.EIO); !errors.As(err, &ue) {
		t.Fatalf("FailRetrieve of a retrieved file: %v, want an UnmatchedFaultError", err)
	}
	if err := k.CheckFaults(); err != nil {
		t.Errorf("refused faults are not armed: %v", err)
	}

	// Another name is for the next live update, which must hand it over.
	if err := k.FailRetrieve("b", 1, unix.EIO); err != nil {
		t.Fatal(err)
	}
	b := preservedSession(t, d, "b", 1, "b")
	d.Close()
	faketest.Kexec(t, k, in, b)
	d = faketest.Open(t, k)
	inb, err := d.RetrieveSession("b")
	if err != nil {
		t.Fatal(err)
	}
	defer inb.Close()
	_, err = inb.Retrieve(1)
	mustErrno(t, err, unix.EIO, "retrieve with the fault armed in the kernel before")
	if err := k.CheckFaults(); err != nil {
		t.Errorf("every fault fired: %v", err)
	}
}

// CheckFaults names every armed fault that has not fired, including a
// retrieve fault whose kernel was replaced before the retrieve, and
// nothing once they have.
func TestCheckFaults(t *testing.T) {
	checkFDs(t)
	k, err := fake.New() // not faketest.New: this test leaves faults unfired
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.CheckFaults(); err != nil {
		t.Fatalf("no fault armed: %v", err)
	}
	d := faketest.Open(t, k)
	s := preservedSession(t, d, "a", 1, "kept")
	d.Close()
	faketest.Kexec(t, k, s)
	if err := k.FailRetrieve("a", 1, unix.EIO); err != nil {
		t.Fatal(err)
	}
	if err := k.FailPreserve(3, unix.ENOMEM); err != nil {
		t.Fatal(err)
	}
	if err := k.FailFreeze("later", unix.EAGAIN); err != nil {
		t.Fatal(err)
	}
	if err := k.FailRestore(unix.EINVAL); err != nil {
		t.Fatal(err)
	}
	err = k.CheckFaults()
	var ufe *fake.UnfiredFaultsError
	if !errors.As(err, &ufe) {
		t.Fatalf("CheckFaults with four armed: %v, want an UnfiredFaultsError", err)
	}
	want := []string{`FailFreeze("later", EAGAIN)`, "FailPreserve(3, ENOMEM) (3 more preserves to go)", "FailRestore(EINVAL)", `FailRetrieve("a", 1, EIO)`}
	if !slices.Equal(ufe.Faults, want) {
		t.Errorf("unfired faults %q, want %q", ufe.Faults, want)
	}
	// The restore fault fires at this boot's first open, whose incoming
	// sessions are not yet restored.
	if _, err := k.Open(); !errors.Is(err, unix.EIO) {
		t.Fatalf("open with FailRestore armed: %v, want EIO", err)
	}
	if err := k.FailPreserve(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := k.Reboot(); err != nil {
		t.Fatal(err)
	}
	err = k.CheckFaults()
	want = []string{`FailFreeze("later", EAGAIN)`, `FailRetrieve("a", 1, EIO) (its kernel was replaced before the retrieve)`}
	if !errors.As(err, &ufe) || !slices.Equal(ufe.Faults, want) {
		t.Errorf("after the restore fault fired and the reboot: %v, want %q", err, want)
	}
}

// preservedSession creates the outgoing session name on d holding a memfd
// of content as token.
func preservedSession(t testing.TB, d *liveupdate.Device, name string, token uint64, content string) *liveupdate.Session {
	t.Helper()
	s, err := d.CreateSession(name)
	if err != nil {
		t.Fatal(err)
	}
	m := faketest.Memfd(t, content)
	defer m.Close() // the session holds it
	if err := s.Preserve(m, token); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}
