//go:build linux

package liveupdate_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// The whole story of a live update, on a fake kernel: preserve a memfd in
// an outgoing session, kexec, retrieve it in the next kernel and finish.
// On a real kernel, open liveupdate.DefaultPath instead and reboot with
// kexec between the stages.
func Example() {
	k, err := fake.New()
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()

	// Stage 1, before the update.
	dev, err := k.Open() // liveupdate.Open(liveupdate.DefaultPath) on a real kernel
	if err != nil {
		log.Fatal(err)
	}
	s, err := dev.CreateSession("vm-42")
	if err != nil {
		log.Fatal(err)
	}
	fd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	ram := os.NewFile(uintptr(fd), "guest-ram")
	ram.WriteString("guest state")
	if err := s.Preserve(ram, 1); err != nil {
		log.Fatal(err)
	}
	ram.Close() // the session keeps the memfd
	dev.Close() // sessions outlive the device fd; keep s open until the kexec

	if err := k.Kexec(); err != nil { // reboot(LINUX_REBOOT_CMD_KEXEC)
		log.Fatal(err)
	}
	s.Close() // the old kernel's fd; a real agent's process is gone by now

	// Stage 2, in the next kernel.
	dev, err = k.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	in, err := dev.RetrieveSession("vm-42")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	f, err := in.Retrieve(1)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	f.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(f)
	fmt.Printf("%s\n", b)
	if err := in.Finish(); err != nil {
		log.Fatal(err)
	}
	// Output: guest state
}

// Errors name the operation and the session, wrap the kernel's errno and
// say what it means.
func ExampleError() {
	k, _ := fake.New()
	defer k.Close()
	dev, _ := k.Open()
	defer dev.Close()
	s, _ := dev.CreateSession("db")
	defer s.Close()
	_, err := dev.CreateSession("db")
	fmt.Println(errors.Is(err, unix.EEXIST))
	fmt.Println(err)

	_, err = dev.CreateSession("")
	fmt.Println(errors.Is(err, liveupdate.ErrInvalidName), errors.Is(err, unix.EINVAL))
	// Output:
	// true
	// liveupdate: create session "db": file exists (an outgoing session of that name exists)
	// true true
}

// Open tells a machine without LUO from other failures.
func ExampleOpen() {
	dev, err := liveupdate.Open("/nonexistent/liveupdate")
	if errors.Is(err, liveupdate.ErrNotSupported) {
		fmt.Println("no live update here")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	dev.Close()
	// Output: no live update here
}

// A client handed a session fd (over a unix socket, or by inheritance)
// wraps it and uses it like its own.
func ExampleNewSession() {
	k, _ := fake.New()
	defer k.Close()
	dev, _ := k.Open()
	defer dev.Close()
	owned, _ := dev.CreateSession("client-7")
	defer owned.Close()

	fd := owned.Fd() // what the client receives
	fmt.Println(liveupdate.IsSession(fd))
	s, err := liveupdate.NewSession(fd)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	name, _ := s.Name()
	fmt.Println(name)
	// Output:
	// true
	// client-7
}
