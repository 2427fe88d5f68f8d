//go:build linux

package fake_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-luo/luo/liveupdate"
	"github.com/go-luo/luo/liveupdate/fake"
	"github.com/go-luo/luo/liveupdate/fake/faketest"
	"golang.org/x/sys/unix"
)

// raiseNoFile lets the benchmark hold n sessions: each takes two fds in
// this process (the session and the fake's end of it).
func raiseNoFile(b *testing.B, n uint64) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = n
	if lim.Max < n {
		lim.Max = n
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("needs RLIMIT_NOFILE %d: %v (run as root, or raise the hard limit)", n, err)
	}
}

// kexecSizes are the sizes of BenchmarkKexecSessions and
// BenchmarkKexecFiles. 100,000 needs a hard RLIMIT_NOFILE above 101,000
// (the fake in the child holds an fd for each session or file) and is
// skipped below it; where it runs, its setup (creating the sessions or
// preserving the files, not timed) takes most of the benchmark's time.
var kexecSizes = []int{1000, 4000, 10000, 100000}

// BenchmarkKexecSessions measures a live update of n empty sessions: the
// freeze and KHO write, the next kernel's boot from the image, and the
// restore at its first open. Each session takes an fd in the agent and one
// in the fake, more than one process may hold for 10,000 sessions, so the
// fake runs in a child process (Kernel.Listen) as the kernel would.
func BenchmarkKexecSessions(b *testing.B) {
	for _, n := range kexecSizes {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			raiseNoFile(b, uint64(n+1000))
			for range b.N {
				b.StopTimer()
				srv := startServer(b)
				d, err := liveupdate.Open(srv.path)
				if err != nil {
					b.Fatal(err)
				}
				keep := make([]*liveupdate.Session, n)
				for i := range keep {
					if keep[i], err = d.CreateSession(fmt.Sprint("s-", i)); err != nil {
						b.Fatal(err)
					}
				}
				d.Close()
				srv.do(b, "gc") // a collection due now would land in the timing
				b.StartTimer()
				srv.do(b, "kexec")
				d, err = liveupdate.Open(srv.path)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := srv.do(b, "incoming"); got != fmt.Sprint(n) {
					b.Fatalf("%s incoming sessions, want %d", got, n)
				}
				d.Close()
				for _, s := range keep {
					s.Close()
				}
				srv.stop(b)
			}
		})
	}
}

// server is a fake kernel in a child process, driven by lines on its
// standard input: "kexec", "gc", "incoming" (prints the number of incoming
// sessions), "files" (the number of their files), "quit".
type server struct {
	path string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
}

const serveEnv = "LUO_FAKE_TEST_SERVE"

func startServer(b *testing.B) *server {
	path := filepath.Join(b.TempDir(), "liveupdate")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), serveEnv+"="+path)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	srv := &server{path: path, cmd: cmd, in: in, out: bufio.NewReader(out)}
	if got := srv.line(b); got != "ready" {
		b.Fatalf("fake server: %q", got)
	}
	return srv
}

func (s *server) line(b *testing.B) string {
	l, err := s.out.ReadString('\n')
	if err != nil {
		b.Fatalf("fake server: %v", err)
	}
	return strings.TrimSpace(l)
}

func (s *server) do(b *testing.B, cmd string) string {
	fmt.Fprintln(s.in, cmd)
	got := s.line(b)
	if strings.HasPrefix(got, "error") {
		b.Fatalf("fake server %s: %s", cmd, got)
	}
	return got
}

func (s *server) stop(b *testing.B) {
	fmt.Fprintln(s.in, "quit")
	s.in.Close()
	if err := s.cmd.Wait(); err != nil {
		b.Fatalf("fake server: %v", err)
	}
}

// TestHelperServe is the child of startServer.
func TestHelperServe(t *testing.T) {
	path := os.Getenv(serveEnv)
	if path == "" {
		t.Skip("the fake server of BenchmarkKexecSessions")
	}
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	k := faketest.New(t)
	if _, err := k.Listen(path); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "kexec":
			if err := k.Kexec(); err != nil {
				fmt.Println("error", err)
				continue
			}
			fmt.Println("ok")
		case "gc":
			runtime.GC()
			fmt.Println("ok")
		case "incoming":
			fmt.Println(len(k.State().Incoming))
		case "files":
			n := 0
			for _, s := range k.State().Incoming {
				n += len(s.Files)
			}
			fmt.Println(n)
		case "quit":
			return
		}
	}
}

// BenchmarkKexecFiles measures a live update of one session holding n
// one-page memfds. The fake holds an fd for each, so it runs in a child
// process as in BenchmarkKexecSessions.
func BenchmarkKexecFiles(b *testing.B) {
	for _, n := range kexecSizes {
		b.Run(fmt.Sprint("files=", n), func(b *testing.B) {
			raiseNoFile(b, uint64(n+1000))
			page := make([]byte, 4096)
			for range b.N {
				b.StopTimer()
				srv := startServer(b)
				d, err := liveupdate.Open(srv.path)
				if err != nil {
					b.Fatal(err)
				}
				s, err := d.CreateSession("files")
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					fd, err := unix.MemfdCreate("f", unix.MFD_CLOEXEC)
					if err != nil {
						b.Fatal(err)
					}
					copy(page, fmt.Sprint("file-data-", i))
					unix.Write(fd, page)
					if err := s.PreserveFD(fd, uint64(i)); err != nil {
						b.Fatal(err)
					}
					unix.Close(fd)
				}
				d.Close()
				srv.do(b, "gc") // a collection due now would land in the timing
				b.StartTimer()
				srv.do(b, "kexec")
				d, err = liveupdate.Open(srv.path)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := srv.do(b, "files"); got != fmt.Sprint(n) {
					b.Fatalf("%s incoming files, want %d", got, n)
				}
				d.Close()
				s.Close()
				srv.stop(b)
			}
		})
	}
}

// BenchmarkFakeOps measures single requests to the fake: each is a round
// trip over a socket, as a real ioctl is a round trip into the kernel.
func BenchmarkFakeOps(b *testing.B) {
	raiseNoFile(b, 8192)
	b.Run("create+preserve", func(b *testing.B) {
		k, _ := fake.New()
		defer k.Close()
		d, _ := k.Open()
		defer d.Close()
		fd, _ := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
		defer unix.Close(fd)
		i := 0
		for b.Loop() {
			s, err := d.CreateSession(fmt.Sprint("s-", i))
			if err != nil {
				b.Fatal(err)
			}
			if err := s.PreserveFD(fd, 1); err != nil {
				b.Fatal(err)
			}
			s.Close() // unpreserves, so the memfd can go in the next one
			i++
		}
	})
	b.Run("retrieve", func(b *testing.B) {
		k, in := incomingSession(b, 1)
		defer k.Close()
		defer in.Close()
		for b.Loop() {
			f, err := in.Retrieve(0)
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("finish", func(b *testing.B) {
		k, in := incomingSession(b, 0)
		defer k.Close()
		defer in.Close()
		for b.Loop() {
			if err := in.Finish(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// incomingSession returns a kernel after a live update and its incoming
// session "in" holding n memfds, tokens 0..n-1.
func incomingSession(b *testing.B, n int) (*fake.Kernel, *liveupdate.Session) {
	k, err := fake.New()
	if err != nil {
		b.Fatal(err)
	}
	d, _ := k.Open()
	s, _ := d.CreateSession("in")
	for i := range n {
		fd, _ := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
		unix.Write(fd, []byte("data"))
		if err := s.PreserveFD(fd, uint64(i)); err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	d.Close()
	if err := k.Kexec(); err != nil {
		b.Fatal(err)
	}
	s.Close()
	d, _ = k.Open()
	in, err := d.RetrieveSession("in")
	if err != nil {
		b.Fatal(err)
	}
	d.Close()
	return k, in
}

// BenchmarkMemfdThroughImage carries a 256 MiB memfd through a live
// update (freeze into the image, boot, retrieve into a new memfd) beside
// copies of the same bytes from one memfd to a new one: through a buffer
// (pread and pwrite), and in the kernel (copy_file_range).
func BenchmarkMemfdThroughImage(b *testing.B) {
	const size = 256 << 20
	src, err := unix.MemfdCreate("src", unix.MFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(src)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>12)
	}
	for off := 0; off < size; off += len(buf) {
		unix.Pwrite(src, buf, int64(off))
	}
	b.Run("plain-copy", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			dst, _ := unix.MemfdCreate("dst", unix.MFD_CLOEXEC)
			for off := 0; off < size; off += len(buf) {
				unix.Pread(src, buf, int64(off))
				unix.Pwrite(dst, buf, int64(off))
			}
			unix.Close(dst)
		}
	})
	b.Run("copy-file-range", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			dst, _ := unix.MemfdCreate("dst", unix.MFD_CLOEXEC)
			var soff, doff int64
			for left := size; left > 0; {
				n, err := unix.CopyFileRange(src, &soff, dst, &doff, left, 0)
				if err != nil || n == 0 {
					b.Fatalf("copy_file_range: %d, %v", n, err)
				}
				left -= n
			}
			unix.Close(dst)
		}
	})
	b.Run("kexec", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			b.StopTimer()
			runtime.GC() // the previous image's 256 MiB goes here, not in the timing
			b.StartTimer()
			k, _ := fake.New()
			d, _ := k.Open()
			s, _ := d.CreateSession("big")
			if err := s.PreserveFD(src, 1); err != nil {
				b.Fatal(err)
			}
			d.Close()
			if err := k.Kexec(); err != nil {
				b.Fatal(err)
			}
			s.Close()
			d, _ = k.Open()
			in, _ := d.RetrieveSession("big")
			f, err := in.Retrieve(1)
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
			in.Close()
			d.Close()
			k.Close()
		}
	})
}

// BenchmarkBaseline is what a fake request is measured against: a blocking
// SOCK_SEQPACKET round trip between two goroutines of this process, a
// request of a header and a small argument answered by a reply of a
// header and a payload, as the fake's are. seqpacket carries no fd;
// seqpacket-fd passes one (a memfd) by SCM_RIGHTS with the request, which
// the answering side closes before it replies, as the fake closes a
// request's file.
func BenchmarkBaseline(b *testing.B) {
	for _, withFD := range []bool{false, true} {
		name := "seqpacket"
		if withFD {
			name = "seqpacket-fd"
		}
		b.Run(name, func(b *testing.B) { benchSeqpacket(b, withFD) })
	}
}

func benchSeqpacket(b *testing.B, withFD bool) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	client, server := pair[0], pair[1]
	defer unix.Close(client)
	var rights []byte
	if withFD {
		fd, err := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		rights = unix.UnixRights(fd)
	}
	served := make(chan error, 1)
	go func() {
		defer unix.Close(server)
		buf := make([]byte, 64)
		oob := make([]byte, unix.CmsgSpace(4*4))
		reply := make([]byte, 40)
		for {
			n, oobn, _, _, err := unix.Recvmsg(server, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err != nil || n == 0 {
				served <- err
				return
			}
			if oobn > 0 {
				msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
				if err != nil || len(msgs) != 1 {
					served <- fmt.Errorf("control data: %v", err)
					return
				}
				fds, err := unix.ParseUnixRights(&msgs[0])
				if err != nil {
					served <- err
					return
				}
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			if err := unix.Sendmsg(server, reply, nil, nil, unix.MSG_NOSIGNAL); err != nil {
				served <- err
				return
			}
		}
	}()
	req := make([]byte, 32)
	reply := make([]byte, 64)
	for b.Loop() {
		if err := unix.Sendmsg(client, req, rights, nil, unix.MSG_NOSIGNAL); err != nil {
			b.Fatal(err)
		}
		if n, err := unix.Read(client, reply); err != nil || n != 40 {
			b.Fatalf("reply: %d bytes, %v", n, err)
		}
	}
	unix.Shutdown(client, unix.SHUT_WR)
	if err := <-served; err != nil {
		b.Fatal(err)
	}
}
