//go:build linux

package fdpass_test

import (
	"fmt"
	"log"
	"net"
	"os"

	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fdpass"
	"golang.org/x/sys/unix"
)

// A daemon hands an outgoing session to a client over a unix socket; the
// client learns its name and direction from the message. Here both ends
// are in one process, on a fake kernel.
func Example() {
	k, err := fake.New()
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	s, err := dev.CreateSession("vm-1")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Fatal(err)
	}
	daemon, client := unixConn(fds[0]), unixConn(fds[1])
	defer daemon.Close()
	defer client.Close()

	if err := fdpass.Send(daemon, s); err != nil { // the daemon's side
		log.Fatal(err)
	}
	got, err := fdpass.Receive(client) // the client's side
	if err != nil {
		log.Fatal(err)
	}
	defer got.Close()
	name, err := got.Name()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name, got.Direction())
	// Output: vm-1 outgoing
}

// unixConn makes a *net.UnixConn of a socket fd, which it takes over.
func unixConn(fd int) *net.UnixConn {
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		log.Fatal(err)
	}
	return c.(*net.UnixConn)
}
