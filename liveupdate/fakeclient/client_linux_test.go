package fakeclient

import (
	"testing"

	"github.com/go-luo/luo/internal/fakehook"
)

// Importing the package installs its client, which tells a plain socket
// from a fake's.
func TestInstalled(t *testing.T) {
	c := fakehook.Installed()
	if _, ok := c.(client); !ok {
		t.Fatalf("fakehook.Installed() = %T, want this package's client", c)
	}
	if _, _, ok := c.Peer(-1); ok {
		t.Error("Peer(-1) = ok")
	}
}
