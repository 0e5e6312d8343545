//go:build linux && !386

package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// sockConn is a TCP connection for an event loop (see loop). While the
// loop owns it, its socket is in the loop's epoll set and Read and Write
// never block: Read answers errWouldBlock when nothing has arrived, and
// Write queues what the socket will not take yet. crypto/tls and bufio
// pass errWouldBlock on without failing the connection, so an upstream's
// TLS runs over it unchanged.
//
// For work that must block (a dial, a body streamed to the client, a
// lingering close) the connection is lent: Read, Write and the deadlines
// go to a net.Conn on a duplicate of the socket, owned by one goroutine
// until it hands the connection back.
type sockConn struct {
	fd            int // -1 until a loop owns the socket
	local, remote net.Addr

	// Used by the owning loop, or by the goroutine it lent the
	// connection to.
	owner    sockOwner // what the loop does with the socket's events
	readable bool      // bytes may be waiting: no short read since the last event
	hup      bool      // the peer has closed or reset: read on to the end
	eof      bool
	wq       []byte // written, not yet taken by the socket
	readBy   time.Time
	writeBy  time.Time

	mu     sync.Mutex // guards lp, lent and closed against Close
	lp     *loop
	lent   net.Conn
	closed bool
}

// sockOwner handles a socket's events in its loop.
type sockOwner interface {
	event(ev uint32)
	// abort closes the socket and ends what it was doing, at once.
	abort()
}

// newSockConn wraps a blocking TCP connection, lent until a loop owns it.
func newSockConn(nc net.Conn) net.Conn {
	return &sockConn{fd: -1, lent: nc, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
}

// own hands the connection to l: the socket is taken from the net.Conn it
// was lent to (a duplicate of it is kept), which is closed.
func (s *sockConn) own(l *loop) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if s.fd < 0 {
		fd, err := dupConn(s.lent)
		if err != nil {
			return err
		}
		s.fd = fd
	}
	_ = s.lent.Close()
	s.lent, s.lp = nil, l
	s.readable, s.readBy, s.writeBy = true, time.Time{}, time.Time{}
	return nil
}

// lend makes the connection blocking, for one goroutine, until own.
func (s *sockConn) lend() error {
	fd, errno := dupFD(s.fd)
	if errno != 0 {
		return os.NewSyscallError("fcntl", errno)
	}
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = nc.Close()
		return net.ErrClosed
	}
	s.lent = nc
	return nil
}

// dupConn duplicates the socket of nc.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, errno := -1, syscall.Errno(0)
	if err := rc.Control(func(f uintptr) { fd, errno = dupFD(int(f)) }); err != nil {
		return -1, err
	}
	if errno != 0 {
		return -1, os.NewSyscallError("fcntl", errno)
	}
	return fd, nil
}

func dupFD(fd int) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	return int(r), errno
}

// Read reads what has arrived; errWouldBlock when nothing has.
func (s *sockConn) Read(p []byte) (int, error) {
	if s.lent != nil {
		return s.lent.Read(p)
	}
	switch {
	case s.closed:
		return 0, net.ErrClosed
	case s.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	case !s.readable:
		return 0, errWouldBlock
	}
	for {
		r, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		n := int(r)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			s.readable = false
			return 0, errWouldBlock
		case errno != 0:
			return 0, s.opError("read", errno)
		case n == 0:
			s.eof = true
			return 0, io.EOF
		}
		if n < len(p) && !s.hup {
			// The socket had no more: the next bytes bring an event.
			// (A hang-up's event may have come with the bytes just read.)
			s.readable = false
		}
		return n, nil
	}
}

// note takes in an epoll event's news.
func (s *sockConn) note(ev uint32) {
	if ev&(epollIn|epollRdHup|epollHup|epollErr) != 0 {
		s.readable = true
	}
	if ev&(epollRdHup|epollHup|epollErr) != 0 {
		s.hup = true
	}
}

// Write writes p, queueing what the socket does not take at once. It
// fails only when the connection does.
func (s *sockConn) Write(p []byte) (int, error) {
	if s.lent != nil {
		if len(s.wq) > 0 {
			q := s.wq
			s.wq = nil
			if _, err := s.lent.Write(q); err != nil {
				return 0, err
			}
		}
		return s.lent.Write(p)
	}
	if s.closed {
		return 0, net.ErrClosed
	}
	if len(s.wq) > 0 {
		s.wq = append(s.wq, p...)
		return len(p), nil
	}
	n, err := s.send(p)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		s.wq = append(s.wq, p[n:]...)
	}
	return len(p), nil
}

// send writes what the socket takes of p now.
func (s *sockConn) send(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		r, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&p[done])),
			uintptr(len(p)-done), syscall.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			done += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return done, nil
		default:
			return done, s.opError("write", errno)
		}
	}
	return done, nil
}

// flush writes what the queue holds, as far as the socket takes it.
func (s *sockConn) flush() error {
	n, err := s.send(s.wq)
	left := copy(s.wq, s.wq[n:])
	s.wq = s.wq[:left]
	if left == 0 && cap(s.wq) > trimmedBuffer {
		s.wq = nil
	}
	return err
}

// peerGone reports whether the peer has closed or reset the connection
// with nothing left unread, without reading.
func (s *sockConn) peerGone() bool {
	var b [1]byte
	r, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == 0 && r == 0 || errno == syscall.ECONNRESET
}

func (s *sockConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.local, Addr: s.remote, Err: os.NewSyscallError(op, errno)}
}

// Close closes the connection. From outside its loop (Server.Shutdown),
// the loop is asked to close it.
func (s *sockConn) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	if s.lent != nil || s.lp == nil {
		s.closed = true
		lent, fd := s.lent, s.fd
		s.mu.Unlock()
		var err error
		if lent != nil {
			err = lent.Close()
		}
		if fd >= 0 {
			_ = syscall.Close(fd)
		}
		return err
	}
	l := s.lp
	s.mu.Unlock()
	l.post(func() {
		if s.owner != nil {
			s.owner.abort()
		} else {
			l.closeSock(s)
		}
	})
	return nil
}

// CloseWrite shuts the sending side down.
func (s *sockConn) CloseWrite() error {
	if s.lent != nil {
		if cw, ok := s.lent.(interface{ CloseWrite() error }); ok {
			return cw.CloseWrite()
		}
	}
	return syscall.Shutdown(s.fd, syscall.SHUT_WR)
}

// LocalAddr returns the local address.
func (s *sockConn) LocalAddr() net.Addr { return s.local }

// RemoteAddr returns the peer's address.
func (s *sockConn) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets both deadlines: the loop's timers while it owns the
// connection, the lent net.Conn's otherwise.
func (s *sockConn) SetDeadline(t time.Time) error {
	if s.lent != nil {
		return s.lent.SetDeadline(t)
	}
	s.readBy, s.writeBy = t, t
	return nil
}

// SetReadDeadline sets the read deadline (see SetDeadline).
func (s *sockConn) SetReadDeadline(t time.Time) error {
	if s.lent != nil {
		return s.lent.SetReadDeadline(t)
	}
	s.readBy = t
	return nil
}

// SetWriteDeadline sets the write deadline (see SetDeadline).
func (s *sockConn) SetWriteDeadline(t time.Time) error {
	if s.lent != nil {
		return s.lent.SetWriteDeadline(t)
	}
	s.writeBy = t
	return nil
}

// SyscallConn gives the lent net.Conn's raw connection (the client watch
// peeks at it).
func (s *sockConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := s.lent.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not lent")
}
