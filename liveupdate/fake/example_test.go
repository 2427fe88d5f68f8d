//go:build linux

package fake_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/go-luo/luo/liveupdate/fake"
	"golang.org/x/sys/unix"
)

// Linux 7.2's duplicate-create bug, as an agent's test meets it: with 51
// outgoing sessions, a create of a name in use fails with EEXIST but leaves
// an empty block, and the next kernel panics at boot. The machine then
// runs nothing until a cold boot, which hands nothing over.
func ExampleKernel_Reboot() {
	k, err := fake.New()
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open()
	if err != nil {
		log.Fatal(err)
	}
	for i := range 51 {
		s, err := dev.CreateSession(fmt.Sprint("vm-", i))
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
	}
	_, err = dev.CreateSession("vm-0")
	fmt.Println("duplicate:", errors.Is(err, unix.EEXIST), "blocks:", k.State().SessionBlocks)
	dev.Close()

	var panicked *fake.PanicError
	err = k.Kexec()
	fmt.Println("kexec panics the next kernel:", errors.As(err, &panicked))
	_, err = k.Open()
	fmt.Println("open fails:", errors.As(err, &panicked))

	if err := k.Reboot(); err != nil {
		log.Fatal(err)
	}
	dev, err = k.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	_, err = dev.RetrieveSession("vm-0")
	fmt.Println("after the cold boot:", errors.Is(err, unix.ENOENT))
	// Output:
	// duplicate: true blocks: 2
	// kexec panics the next kernel: true
	// open fails: true
	// after the cold boot: true
}
