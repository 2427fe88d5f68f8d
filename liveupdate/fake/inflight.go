package fake

// MaxInFlight is how many requests on one device or session fd the fake
// serves at a time. The kernel serves an ioctl on the calling thread, so
// a process has as many in progress on a file as it has threads calling;
// the fake serves a request on a goroutine of its own, and bounds them
// per fd instead, so that its goroutines and fds do not grow with what a
// client sends.
//
// Past the bound, the client's next request waits: the fake leaves its
// message unread in the fd's socket until a request on that fd has been
// answered, then serves it, in the order sent. The waiting messages, and
// the fds attached to them, are the sender's (counted in its socket's send
// buffer and among its process's fds in flight, not in the fake's fd
// table); once that send buffer is full, the client's next request blocks
// in sendmsg, as a thread in the kernel's ioctl does. A close of the fd
// releases it after the requests already sent, as the kernel's release
// waits for the ioctls holding the file.
const MaxInFlight = 8
