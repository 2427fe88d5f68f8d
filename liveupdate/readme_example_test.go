//go:build linux

package liveupdate_test

import (
	"io"
	"log"
	"os"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// An agent's first stage on a real kernel: preserve a memfd and keep the
// session open until the kexec. (README.md quotes this.)
func Example_beforeTheUpdate() {
	dev, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		log.Fatal(err) // errors.Is(err, liveupdate.ErrNotSupported) without LUO
	}
	defer dev.Close() // sessions outlive the device fd

	s, err := dev.CreateSession("my-agent")
	if err != nil {
		log.Fatal(err)
	}
	fd, err := unix.MemfdCreate("state", unix.MFD_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	state := os.NewFile(uintptr(fd), "state")
	state.WriteString("what the next kernel's agent needs")
	if err := s.Preserve(state, 1); err != nil {
		log.Fatal(err) // EBUSY: already preserved; ENOENT: not a memfd
	}
	state.Close() // the session holds the memfd now
	// Keep s open until the kexec: closing it drops the session.
}

// An agent's second stage, in the next kernel. (README.md quotes this.)
func Example_afterTheUpdate() {
	dev, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	s, err := dev.RetrieveSession("my-agent")
	if err != nil {
		log.Fatal(err) // ENOENT: the previous kernel handed no such session
	}
	defer s.Close()
	state, err := s.Retrieve(1)
	if err != nil {
		log.Fatal(err)
	}
	defer state.Close()
	state.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(state)
	log.Printf("%s", b)
	if err := s.Finish(); err != nil { // files not retrieved are destroyed
		log.Fatal(err)
	}
}
