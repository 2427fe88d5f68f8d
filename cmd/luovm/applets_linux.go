//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// applets are the commands the guest's tests run as children (the
// conformance suite starts sleep(1) to hold an inherited session fd, and
// true(1) to warm up), served by luovm itself under those names: the
// image has them as symlinks to /init.
var applets = []string{"sleep", "true"}

// applet runs luovm as the applet name, when it is one, and reports
// whether it was.
func applet(name string, args []string) bool {
	switch name {
	case "true":
		os.Exit(0)
	case "sleep":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: sleep SECONDS")
			os.Exit(2)
		}
		s, err := strconv.ParseFloat(args[0], 64)
		if err != nil || s < 0 {
			fmt.Fprintf(os.Stderr, "sleep: bad number of seconds %q\n", args[0])
			os.Exit(2)
		}
		time.Sleep(time.Duration(s * float64(time.Second)))
		os.Exit(0)
	}
	return false
}
