//go:build linux

package fake

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/go-luo/luo/kho"

	"github.com/go-luo/luo/liveupdate"
	"golang.org/x/sys/unix"
)

// Kernel is a fake LUO kernel: the machine an agent runs on, across live
// updates. It starts booted, with no incoming sessions; Kexec hands its
// outgoing sessions to the next kernel, which it then runs.
//
// A Kernel serves each of its fds from a goroutine. Close it when done (a
// test's Cleanup): Close ends them and closes the fake's ends of every fd;
// the user's ends stay open, and requests on them fail with an error
// matching unix.EIO.
type Kernel struct {
	cfg config

	epfd    int            // every object's fd, for hang-ups (reap)
	loops   sync.WaitGroup // the objects' goroutines
	serving sync.WaitGroup // requests being answered
	msgBufs sync.Pool      // *msgBuf, for requests being read and answered
	objsMu  sync.Mutex
	objs    map[int]*object // by our fd
	closed  bool

	bootMu sync.Mutex
	cur    *boot // the kernel now running

	listeners []*listener // guarded by objsMu

	handlers []Handler // registered file handlers, in registration order
	faults   faults
}

// handler returns the registered handler with that compatible string.
func (k *Kernel) handler(compatible string) Handler {
	for _, h := range k.handlers {
		if h.Compatible() == compatible {
			return h
		}
	}
	return nil
}

// New starts a fake kernel configured by opts, of DefaultGeneration unless
// WithGeneration says otherwise. It boots fresh (no incoming sessions), or,
// with WithImageFile naming a file that is not empty, from the image a
// previous Kexec left there. An image the real kernel would panic on gives
// a *PanicError; a file that holds no image, an error that says so.
func New(opts ...Option) (*Kernel, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.gen.valid() {
		return nil, fmt.Errorf("fake: %v is not a generation the fake models (Linux6_19, Linux7_2)", cfg.gen)
	}
	cfg.b = cfg.gen.behaviour()
	var img *kho.Image
	if cfg.imageFile != "" {
		i, err := readImageFile(cfg.imageFile)
		switch {
		case err == nil:
			img = i
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("fake: boot from %s: %w (remove the file, or empty it, to boot fresh)", cfg.imageFile, err)
		}
	}
	return newKernel(cfg, img)
}

func newKernel(cfg config, img *kho.Image) (*Kernel, error) {
	k := &Kernel{cfg: cfg, objs: map[int]*object{}}
	k.handlers = append([]Handler{&memfdHandler{compat: cfg.b.memfd}}, cfg.handlers...)
	b, err := bootFrom(k, img)
	if err != nil {
		return nil, err
	}
	k.cur = b
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	k.epfd = epfd
	return k, nil
}

// isClosed tells whether Close has begun.
func (k *Kernel) isClosed() bool {
	k.objsMu.Lock()
	defer k.objsMu.Unlock()
	return k.closed
}

// Open opens the fake's device, as open("/dev/liveupdate") does: one opener
// at a time (EBUSY), and the first open after a live update restores the
// incoming sessions (EIO, for good, when the handed-over state is bad). On
// a machine that did not come up from a Kexec it fails with the
// *PanicError until Reboot. After Close it fails with ErrKernelClosed.
func (k *Kernel) Open() (*liveupdate.Device, error) {
	if k.isClosed() {
		return nil, &liveupdate.Error{Op: liveupdate.OpOpen, Path: "fake", Err: ErrKernelClosed}
	}
	k.reap()
	b := k.boot()
	user, err := b.openDevice()
	if err != nil {
		if k.isClosed() {
			// Close ran meanwhile; what the boot answered (EIO from
			// a closed kernel's register, EBUSY from its device
			// that was never released) is not the reason.
			err = ErrKernelClosed
		}
		return nil, &liveupdate.Error{Op: liveupdate.OpOpen, Path: "fake", Err: err}
	}
	defer unix.Close(user)
	return liveupdate.NewDevice(user)
}

// Close stops the fake kernel. The fake's ends of every device and session
// fd close, so the user's ends answer no more requests (unix.EIO); close
// them as usual. Closing again returns ErrKernelClosed.
func (k *Kernel) Close() error {
	k.objsMu.Lock()
	if k.closed {
		k.objsMu.Unlock()
		return ErrKernelClosed
	}
	k.closed = true
	objs := k.objs
	k.objs = nil
	ls := k.listeners
	k.listeners = nil
	k.objsMu.Unlock()
	for _, l := range ls {
		l.stop()
	}
	for _, o := range objs {
		// Leave nothing for a request in flight to pump, then close:
		// the object's goroutine wakes from the netpoller and ends.
		o.readMu.Lock()
		o.hup = true
		o.readMu.Unlock()
		o.f.Close()
	}
	k.loops.Wait()
	k.serving.Wait() // no request waits for a client (object.serve)
	k.bootMu.Lock()
	k.cur.shutdown()
	k.bootMu.Unlock()
	unix.Close(k.epfd)
	return nil
}

func (k *Kernel) boot() *boot {
	k.bootMu.Lock()
	defer k.bootMu.Unlock()
	return k.cur
}

// register puts o in the hang-up epoll set and the objects, wraps its fd
// in the os.File its goroutine serves, and counts that goroutine, all
// under objsMu, so that Close, which takes the objects under objsMu, sees
// o complete. From a successful register on, o.f owns o.fd.
func (k *Kernel) register(o *object) error {
	k.objsMu.Lock()
	defer k.objsMu.Unlock()
	if k.closed {
		return unix.EIO
	}
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(o.fd)}
	if err := unix.EpollCtl(k.epfd, unix.EPOLL_CTL_ADD, o.fd, &ev); err != nil {
		return err
	}
	f := os.NewFile(uintptr(o.fd), "luo-fake")
	rc, err := f.SyscallConn()
	if err != nil {
		// SyscallConn fails only for a nil *os.File, which NewFile
		// returns only for a negative fd.
		unix.EpollCtl(k.epfd, unix.EPOLL_CTL_DEL, o.fd, nil)
		return err
	}
	o.f, o.rc = f, rc
	k.objs[o.fd] = o
	k.loops.Add(1)
	return nil
}

// unregister removes o from the epoll set; false when it was not there
// (Kernel.Close took every object and closes their fds itself).
func (k *Kernel) unregister(o *object) bool {
	k.objsMu.Lock()
	defer k.objsMu.Unlock()
	if k.objs == nil || k.objs[o.fd] != o {
		return false
	}
	delete(k.objs, o.fd)
	unix.EpollCtl(k.epfd, unix.EPOLL_CTL_DEL, o.fd, nil)
	return true
}

// reap handles, now, every hang-up that has happened: a close(2) of the
// last copy of a user's fd hangs the socket up before it returns, so after
// reap the fake's state reflects every close the user has made, as the
// kernel's does when close returns. Every request runs it first.
func (k *Kernel) reap() {
	if k.isClosed() {
		return // Close closes the epoll fd: its number may be another file's
	}
	var eventsArr [64]unix.EpollEvent
	events := eventsArr[:]
	for {
		n, err := unix.EpollWait(k.epfd, events, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		// A pass makes progress when it handles a hang-up first, or
		// finds one another goroutine has handled since (its object
		// has left the set). Level-triggered epoll hands out the ready
		// fds in turn, so with more than a pass holds, passes go on
		// while they make progress: a pass of hang-ups that others
		// are releasing must not hide the rest. A pass that makes
		// none sees only objects whose release waits for a request
		// in progress, which ends it.
		progress := false
		for _, ev := range events[:n] {
			k.objsMu.Lock()
			o := k.objs[int(ev.Fd)]
			k.objsMu.Unlock()
			if o == nil {
				progress = true
				continue
			}
			o.readMu.Lock()
			seen := o.hup
			o.readMu.Unlock()
			if !seen && o.pump() {
				progress = true
				continue
			}
			k.objsMu.Lock()
			gone := k.objs[int(ev.Fd)] != o
			k.objsMu.Unlock()
			if gone {
				progress = true
			}
		}
		if !progress || n < len(events) {
			return
		}
	}
}
