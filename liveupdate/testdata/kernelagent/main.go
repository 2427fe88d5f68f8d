// Command kernelagent is the smallest production agent: it imports package
// liveupdate and nothing of the fake kernel. TestKernelAgentLinksNoFake
// lists its dependencies.
package main

import (
	"fmt"
	"os"

	"github.com/go-luo/luo/liveupdate"
)

func main() {
	d, err := liveupdate.Open(liveupdate.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer d.Close()
	s, err := d.CreateSession("kernelagent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(liveupdate.IsSession(s.Fd()))
}
