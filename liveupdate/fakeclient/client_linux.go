package fakeclient

import (
	"github.com/go-luo/luo/internal/fakehook"
	"github.com/go-luo/luo/internal/fakewire"
)

func init() { fakehook.Install(client{}) }

// client is the fakewire client behind fakehook.Client.
type client struct{}

func (client) Call(fd int, req uint32, arg []byte, attachArgFD bool) error {
	return fakewire.Call(fd, req, arg, attachArgFD)
}

func (client) Dial(path string) (int, error) { return fakewire.Dial(path) }

func (client) Peer(fd int) (session bool, name string, ok bool) {
	a, ok := fakewire.Peer(fd)
	return a.Session, a.Name, ok
}
