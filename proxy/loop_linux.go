//go:build linux && !386

package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"code.cloudfoundry.org/lager/v3"
)

// epoll event bits (EPOLLET does not fit syscall's int constant in a
// uint32).
const (
	epollIn    = syscall.EPOLLIN
	epollOut   = syscall.EPOLLOUT
	epollErr   = syscall.EPOLLERR
	epollHup   = syscall.EPOLLHUP
	epollRdHup = syscall.EPOLLRDHUP
	epollET    = 1 << 31
)

// loop is one event loop: one goroutine, locked to its thread, that
// serves many client connections and their upstream connections from one
// epoll set, the way nginx's workers do. A scrape then costs no goroutine
// hand-off and no read that finds nothing: the loop reads a socket only
// once epoll says it has data, and a scrape whose answer fits smallBody is
// served from start to end on it. What must block (dials, streamed
// bodies, lingering closes) is lent to a goroutine (see sockConn).
type loop struct {
	srv  *Server
	p    *Proxy
	ep   int
	wake int // eventfd: commands are waiting

	owners  []*sockConn // by descriptor
	clients map[*lclient]struct{}
	hosts   map[string]*loopHost
	idle    int       // idle upstream connections
	nextDue time.Time // the earliest timer, or zero
	events  [256]syscall.EpollEvent

	mu     sync.Mutex
	cmds   []func()
	woken  bool
	exited bool
}

// loopHost is one upstream host's idle connections in a loop, most recent
// last.
type loopHost struct {
	pool *hostPool
	idle []*lupstream
}

func newLoop(s *Server) (*loop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		_ = syscall.Close(ep)
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	l := &loop{srv: s, p: s.proxy, ep: ep, wake: int(r), clients: make(map[*lclient]struct{}), hosts: make(map[string]*loopHost)}
	ev := syscall.EpollEvent{Events: epollIn, Fd: int32(l.wake)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, l.wake, &ev); err != nil {
		_ = syscall.Close(ep)
		_ = syscall.Close(l.wake)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

// startLoops starts the event loops (Options.EventLoops). Without any
// (none asked for, or epoll unavailable), connections get goroutines.
func (s *Server) startLoops() {
	for range s.proxy.eventLoops {
		l, err := newLoop(s)
		if err != nil {
			s.proxy.logger.Error("event-loop", err)
			break
		}
		s.loops = append(s.loops, l)
		go l.run()
	}
}

// adopt hands a new TCP connection to a loop, and reports whether it did.
func (s *Server) adopt(nc net.Conn) bool {
	if _, ok := nc.(*net.TCPConn); !ok {
		return false
	}
	s.mu.Lock()
	if !s.loopsStarted {
		s.loopsStarted = true
		s.startLoops()
	}
	loops := s.loops
	s.mu.Unlock()
	if len(loops) == 0 {
		return false
	}
	l := loops[int(s.nextLoop.Add(1))%len(loops)]
	sock := newSockConn(nc).(*sockConn)
	if !l.post(func() { l.adopt(sock) }) {
		_ = nc.Close()
	}
	return true
}

// wakeLoops has every loop look at the server's state (closing).
func (s *Server) wakeLoops() {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.post(func() {})
	}
}

// post runs f on the loop, and reports false when the loop has ended.
func (l *loop) post(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exited {
		return false
	}
	l.cmds = append(l.cmds, f)
	if !l.woken {
		l.woken = true
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = syscall.Write(l.wake, one[:])
	}
	return true
}

func (l *loop) run() {
	runtime.LockOSThread()
	var cmds []func()
	for {
		timeout := -1
		if !l.nextDue.IsZero() {
			timeout = max(0, int((time.Until(l.nextDue)+time.Millisecond-1)/time.Millisecond))
		}
		// Under load events are waiting: taking them without entering a
		// blocking system call keeps the runtime from handing the loop's
		// P to another thread meanwhile.
		n, err := l.pollNow()
		if n == 0 && timeout != 0 {
			n, err = syscall.EpollWait(l.ep, l.events[:], timeout)
		}
		if err != nil && err != syscall.EINTR {
			l.p.logger.Error("epoll-wait", err)
			time.Sleep(10 * time.Millisecond)
		}
		for i := range max(n, 0) {
			ev := l.events[i]
			fd := int(ev.Fd)
			if fd == l.wake {
				cmds = l.takeCmds(cmds[:0])
				continue
			}
			if fd < len(l.owners) && l.owners[fd] != nil {
				s := l.owners[fd]
				l.safely(s, func() { s.owner.event(ev.Events) })
			}
		}
		for _, f := range cmds {
			l.safely(nil, f)
		}
		clear(cmds)
		cmds = cmds[:0]
		if !l.nextDue.IsZero() && !time.Now().Before(l.nextDue) {
			l.scan()
		}
		if l.srv.isClosed() && len(l.clients) == 0 && l.exit() {
			return
		}
	}
}

// pollNow takes the events waiting, without waiting.
func (l *loop) pollNow() (int, error) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// takeCmds moves the posted commands to cmds.
func (l *loop) takeCmds(cmds []func()) []func() {
	var b [8]byte
	_, _ = syscall.Read(l.wake, b[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	cmds = append(cmds, l.cmds...)
	clear(l.cmds)
	l.cmds = l.cmds[:0]
	l.woken = false
	return cmds
}

// safely runs f, for s when s is not nil: a panic aborts s's owner (one
// connection and its exchange) and the loop goes on.
func (l *loop) safely(s *sockConn, f func()) {
	defer func() {
		if v := recover(); v != nil {
			l.p.logger.Error("panic", fmt.Errorf("%v", v), lager.Data{"stack": string(debug.Stack())})
			if s != nil && s.owner != nil {
				s.owner.abort()
			}
		}
	}()
	f()
}

// exit ends the loop once the server is closed and its last connection
// gone, unless commands are waiting.
func (l *loop) exit() bool {
	l.mu.Lock()
	if len(l.cmds) > 0 {
		l.mu.Unlock()
		return false
	}
	l.exited = true
	l.mu.Unlock()
	for _, h := range l.hosts {
		for _, up := range h.idle {
			l.closeSock(up.s)
		}
	}
	clear(l.hosts)
	_ = syscall.Close(l.ep)
	_ = syscall.Close(l.wake)
	return true
}

// register adds s to the epoll set, edge-triggered.
func (l *loop) register(s *sockConn) error {
	ev := syscall.EpollEvent{Events: epollIn | epollOut | epollRdHup | epollET, Fd: int32(s.fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	for s.fd >= len(l.owners) {
		l.owners = append(l.owners, nil)
	}
	l.owners[s.fd] = s
	return nil
}

// take makes s the loop's (sockConn.own) and adds it to the epoll set.
// On failure s is closed.
func (l *loop) take(s *sockConn) error {
	err := s.own(l)
	if err == nil {
		err = l.register(s)
	}
	if err != nil {
		l.closeSock(s)
	}
	return err
}

// unregister takes s out of the epoll set.
func (l *loop) unregister(s *sockConn) {
	if s.fd < len(l.owners) && l.owners[s.fd] == s {
		l.owners[s.fd] = nil
		_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
	}
}

// closeSock closes s; a lent one's goroutine then fails and hands it back.
func (l *loop) closeSock(s *sockConn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	lent := s.lent
	s.mu.Unlock()
	if lent != nil {
		_ = lent.Close()
	} else {
		l.unregister(s)
	}
	if s.fd >= 0 {
		_ = syscall.Close(s.fd)
	}
}

// noteDue makes sure the loop wakes at t.
func (l *loop) noteDue(t time.Time) {
	if l.nextDue.IsZero() || t.Before(l.nextDue) {
		l.nextDue = t
	}
}

// scan fires the timers that are due and prunes idle upstream
// connections.
func (l *loop) scan() {
	now := time.Now()
	l.nextDue = time.Time{}
	for cl := range l.clients {
		if cl.due.IsZero() {
			continue
		}
		if now.Before(cl.due) {
			l.noteDue(cl.due)
			continue
		}
		cl.due = time.Time{}
		l.safely(cl.s, func() { cl.timeout(now) })
	}
	for host, h := range l.hosts {
		kept := h.idle[:0]
		for _, up := range h.idle {
			if by := up.pc.idleSince.Add(idleConnTimeout); now.Before(by) {
				kept = append(kept, up)
				l.noteDue(by)
				continue
			}
			l.idle--
			l.closeSock(up.s)
		}
		clear(h.idle[len(kept):])
		h.idle = kept
		if len(h.idle) == 0 {
			delete(l.hosts, host)
		}
	}
}

// adopt starts serving a new client connection.
func (l *loop) adopt(s *sockConn) {
	sc := l.srv.newConn(s)
	if sc == nil {
		l.closeSock(s)
		return
	}
	cl := &lclient{l: l, sc: sc, s: s}
	s.owner = cl
	if err := l.take(s); err != nil {
		l.p.logger.Error("event-loop", err)
		l.srv.forget(sc)
		return
	}
	l.clients[cl] = struct{}{}
	l.safely(s, cl.next)
}

// host returns the loop's record of an upstream host, creating it.
func (l *loop) host(name string) *loopHost {
	h := l.hosts[name]
	if h == nil {
		// The loop's own, dropped by scan once it has no idle
		// connection.
		h = &loopHost{pool: l.p.client.newHostPool(name)}
		l.hosts[name] = h
	}
	return h
}

// getIdle returns an idle connection to host, or nil.
func (l *loop) getIdle(host string) *lupstream {
	h := l.hosts[host]
	if h == nil {
		return nil
	}
	for n := len(h.idle); n > 0; n = len(h.idle) {
		up := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		l.idle--
		if time.Since(up.pc.idleSince) < idleConnTimeout {
			return up
		}
		l.closeSock(up.s)
	}
	return nil
}

// putIdle keeps an upstream connection whose response was read in full
// for the next scrape of its host, or closes it when the pool is full.
func (l *loop) putIdle(up *lupstream) {
	h := l.host(up.pc.pool.host)
	if l.idle >= maxIdleConns || len(h.idle) >= maxIdleConnsPerHost || len(up.s.wq) > 0 {
		l.closeSock(up.s)
		return
	}
	if up.spoilt() {
		// The last read filled its buffer: whatever came after the
		// response brings no event of its own.
		l.closeSock(up.s)
		return
	}
	up.pc.idleSince = time.Now()
	h.idle = append(h.idle, up)
	l.idle++
	l.noteDue(up.pc.idleSince.Add(idleConnTimeout))
}

// dropIdle closes an idle upstream connection.
func (l *loop) dropIdle(up *lupstream) {
	if h := l.hosts[up.pc.pool.host]; h != nil {
		for i, o := range h.idle {
			if o == up {
				h.idle = append(h.idle[:i], h.idle[i+1:]...)
				l.idle--
				break
			}
		}
	}
	l.closeSock(up.s)
}

// lupstream is an upstream connection owned by a loop.
type lupstream struct {
	l  *loop
	pc *conn
	s  *sockConn
	cl *lclient // the client whose exchange it carries; nil when idle
}

func (up *lupstream) event(ev uint32) {
	s := up.s
	if ev&(epollOut|epollErr|epollHup) != 0 && len(s.wq) > 0 {
		if err := s.flush(); err != nil {
			if up.cl != nil {
				up.cl.upFail(staleError{err})
			} else {
				up.l.dropIdle(up)
			}
			return
		}
	}
	s.note(ev)
	if up.cl == nil {
		if up.spoilt() {
			up.l.dropIdle(up)
		}
		return
	}
	up.cl.upstream()
}

// spoilt reports whether an idle connection can carry no more requests:
// anything read from it but a TLS session ticket means the upstream closed
// it, or sent what no request asked for.
func (up *lupstream) spoilt() bool {
	if !up.s.readable {
		return false
	}
	_, err := up.pc.br.Peek(1)
	return !errors.Is(err, errWouldBlock)
}

func (up *lupstream) abort() {
	if up.cl != nil {
		up.cl.close()
		return
	}
	up.l.dropIdle(up)
}

// clientState is where a loop's client connection is.
type clientState int

const (
	// waiting for a request, or for the last answer to be taken
	waiting clientState = iota
	dialing
	awaitingHeader
	readingBody
	// lent to a goroutine with its upstream connection
	lentOut
	// writing its last answer before closing
	flushing
	closed
)

// lclient is a client connection owned by a loop, and the scrape it is
// exchanging.
type lclient struct {
	l     *loop
	sc    *serverConn
	s     *sockConn
	state clientState
	due   time.Time // when the current wait times out
	// headerBy is when a request header begun must be complete, or, once
	// the request is sent upstream, the response header.
	headerBy time.Time

	x       checkedScrape
	up      *lupstream
	reused  bool // up came from the pool
	retried bool
	gen     int // the exchange's number: late dial results are dropped
	cancel  context.CancelFunc
	keep    bool
	chunked bool    // the answer's body goes in chunks
	answer  []byte  // the answer being read whole: header, then body
	bodyAt  int     // where its body starts
	got     int     // body bytes read; -1: a body of unknown length
	pooled  *[]byte // answer's buffer, from answerBuffers
	body    io.Reader
}

func (cl *lclient) setDue(t time.Time) {
	cl.due = t
	cl.l.noteDue(t)
}

func (cl *lclient) event(ev uint32) {
	s := cl.s
	if ev&(epollOut|epollErr|epollHup) != 0 && len(s.wq) > 0 {
		if err := s.flush(); err != nil {
			cl.close()
			return
		}
	}
	s.note(ev)
	switch cl.state {
	case waiting:
		cl.next()
	case flushing:
		if len(s.wq) == 0 {
			cl.close()
		}
	case dialing, awaitingHeader, readingBody:
		// Prometheus hangs up when its scrape_timeout fires: the
		// exchange is abandoned at once.
		if ev&(epollRdHup|epollHup|epollErr) != 0 && cl.gone() {
			cl.fail(errClientGone)
		}
	}
}

// next reads and answers the client's requests until one goes upstream or
// the client has nothing more to send for now.
func (cl *lclient) next() {
	l, sc, s := cl.l, cl.sc, cl.s
	br := sc.br
	for cl.state == waiting {
		if len(s.wq) > 0 {
			// The last answer first: a slow client gets no more.
			by := s.writeBy
			if by.IsZero() {
				by = time.Now().Add(l.srv.writeTimeout)
			}
			cl.setDue(by)
			return
		}
		if l.srv.isClosed() {
			cl.close()
			return
		}
		if !headerBuffered(br) && br.Buffered() < br.Size() {
			_, err := br.Peek(br.Buffered() + 1)
			if err == nil {
				continue
			}
			if errors.Is(err, errWouldBlock) {
				if br.Buffered() == 0 {
					sc.busy.Store(false)
					cl.headerBy = time.Time{}
					cl.setDue(time.Now().Add(idleTimeout))
				} else {
					sc.busy.Store(true)
					if cl.headerBy.IsZero() {
						cl.headerBy = time.Now().Add(readHeaderTimeout)
					}
					cl.setDue(cl.headerBy)
				}
				return
			}
			if br.Buffered() == 0 {
				cl.close()
				return
			}
			// A header cut short: reading it gives the answer.
		}
		sc.busy.Store(true)
		cl.headerBy, cl.due = time.Time{}, time.Time{}
		if err := readRequest(br, &sc.req); err != nil {
			var re *requestError
			if errors.As(err, &re) {
				l.p.rejectUnread(sc, re)
			}
			cl.shut()
			return
		}
		x, keep, answered := l.p.route(sc, &sc.req)
		if !answered {
			cl.start(x)
			return
		}
		sc.trim()
		if !keep || sc.req.close {
			cl.shut()
			return
		}
	}
}

// gone reports whether the client hung up with nothing left unread: a
// client that sent more requests first is still there.
func (cl *lclient) gone() bool {
	return cl.s.hup && cl.sc.br.Buffered() == 0 && cl.s.peerGone()
}

// start sends x upstream on an idle connection, or a new one.
func (cl *lclient) start(x checkedScrape) {
	cl.x, cl.retried = x, false
	cl.sc.out = x.head[:0] // keeps what the buffer grew to
	if cl.gone() {
		// The hang-up came with the request.
		cl.fail(errClientGone)
		return
	}
	if up := cl.l.getIdle(x.host); up != nil {
		cl.send(up, true)
		return
	}
	cl.dial()
}

// dial opens an upstream connection on a goroutine.
func (cl *lclient) dial() {
	l := cl.l
	cl.state, cl.due = dialing, time.Time{}
	hp := l.host(cl.x.host).pool
	ctx, cancel := context.WithDeadline(context.Background(), cl.x.deadline)
	cl.cancel = cancel
	gen := cl.gen
	go func() {
		pc, err := l.p.client.dial(ctx, hp, true)
		if !l.post(func() { l.safely(cl.s, func() { cl.dialed(gen, ctx, pc, err) }) }) && pc != nil {
			_ = pc.Close()
		}
	}()
}

func (cl *lclient) dialed(gen int, ctx context.Context, pc *conn, err error) {
	if cl.gen != gen || cl.state != dialing {
		if pc != nil {
			_ = pc.Close()
		}
		return
	}
	cl.cancel()
	cl.cancel = nil
	if err != nil {
		if ctx.Err() != nil && !time.Now().Before(cl.x.deadline) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		cl.fail(err)
		return
	}
	s := pc.raw.(*sockConn)
	up := &lupstream{l: cl.l, pc: pc, s: s}
	s.owner = up
	if err := cl.l.take(s); err != nil {
		cl.fail(err)
		return
	}
	cl.send(up, false)
}

// send writes the request on up; the response comes with up's events.
func (cl *lclient) send(up *lupstream, reused bool) {
	cl.up, up.cl, cl.reused = up, cl, reused
	cl.state = awaitingHeader
	cl.headerBy = time.Now().Add(cl.l.p.client.headerTimeout)
	if cl.x.deadline.Before(cl.headerBy) {
		cl.headerBy = cl.x.deadline
	}
	cl.setDue(cl.headerBy)
	if _, err := up.pc.Write(cl.x.head); err != nil {
		cl.upFail(staleError{err})
		return
	}
	up.pc.budget = maxResponseHeaderBytes
	if up.s.readable {
		cl.upstream()
	}
}

// upstream reads what the upstream has sent of the response.
func (cl *lclient) upstream() {
	if cl.state == readingBody {
		cl.readBody()
		return
	}
	pc := cl.up.pc
	br := pc.br
	resp := &cl.sc.resp
	for cl.state == awaitingHeader {
		if !headerBuffered(br) && br.Buffered() < br.Size() {
			_, err := br.Peek(br.Buffered() + 1)
			if err == nil {
				continue
			}
			if errors.Is(err, errWouldBlock) {
				return
			}
			if br.Buffered() == 0 {
				cl.upFail(staleError{err})
				return
			}
			// A header cut short: reading it gives the error.
		} else if !headerBuffered(br) {
			// Longer than the buffer: read on a goroutine, up to
			// maxResponseHeaderBytes.
			cl.lend(lentExchange{headerBy: cl.headerBy})
			return
		}
		if err := readResponse(br, resp); err != nil {
			cl.upFail(exchangeError(err, cl.x.deadline))
			return
		}
		if resp.status == http.StatusSwitchingProtocols {
			cl.upFail(errors.New("the upstream switched protocols unasked"))
			return
		}
		if resp.status >= 200 {
			// The exchange may end in respond, and the next begin on
			// another connection: nothing of this one is used after.
			pc.budget = -1
			cl.respond()
			return
		}
	}
}

// respond starts the answer to a response whose header has been read. A
// body announced as larger than smallBody is streamed by a goroutine; one
// of unknown length is read until it ends or outgrows the buffer.
func (cl *lclient) respond() {
	sc, p := cl.sc, cl.l.p
	r, resp := &sc.req, &sc.resp
	noBody := answersNoBody(r, resp)
	if !noBody && resp.contentLength > smallBody {
		cl.lend(lentExchange{})
		return
	}
	b, keep, _, chunked := p.answerHead(sc, r, resp)
	body := resp.bodyReader(cl.up.pc.br, r.method)
	if noBody {
		p.forwarded(resp.status, cl.x.start)
		err := sc.write(b)
		sc.out = b[:0]
		cl.finish(keep && err == nil)
		return
	}
	cl.keep, cl.body, cl.chunked = keep, body, chunked
	if resp.contentLength >= 0 {
		cl.answer, cl.pooled = bodyBuffer(b, int(resp.contentLength))
		cl.bodyAt, cl.got = len(b), 0
		if cl.pooled == nil {
			sc.out = cl.answer[:0]
		}
	} else {
		// A body of unknown length (chunked, as promhttp sends one of
		// more than 2 KB, or ended by the upstream closing).
		cl.pooled = answerBuffers.Get().(*[]byte)
		cl.answer = unframedBuffer(cl.pooled, b)
		cl.bodyAt, cl.got = len(cl.answer), -1
		sc.out = b[:0]
	}
	cl.state = readingBody
	cl.setDue(cl.x.deadline)
	cl.readBody()
}

// readBody reads what has come of the body; once it has all come, the
// answer is written in one piece.
func (cl *lclient) readBody() {
	if cl.got < 0 {
		cl.readUnframed()
		return
	}
	for cl.bodyAt+cl.got < len(cl.answer) {
		n, err := cl.body.Read(cl.answer[cl.bodyAt+cl.got:])
		cl.got += n
		if cl.bodyAt+cl.got == len(cl.answer) {
			break
		}
		if errors.Is(err, errWouldBlock) {
			return
		}
		if err == nil {
			continue
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		cl.fail(fmt.Errorf("response body cut short: %w", err))
		return
	}
	sc := cl.sc
	cl.l.p.forwarded(sc.resp.status, cl.x.start)
	err := sc.write(cl.answer)
	cl.releaseAnswer()
	cl.finish(cl.keep && err == nil)
}

// readUnframed reads what has come of a body of unknown length. Once it
// has ended, the answer is written in one piece (see unframedAnswer). A
// body that outgrows the buffer is streamed on by a goroutine, after what
// was read.
func (cl *lclient) readUnframed() {
	limit := cap(cl.answer) - unframedTail
	for {
		if len(cl.answer) >= limit {
			head := frameUnframed(cl.answer, cl.bodyAt, cl.chunked, false)
			cl.lend(lentExchange{head: head, body: cl.body, chunked: cl.chunked, keep: cl.keep})
			return
		}
		n, err := cl.body.Read(cl.answer[len(cl.answer):limit])
		cl.answer = cl.answer[:len(cl.answer)+n]
		if err == io.EOF {
			break
		}
		if errors.Is(err, errWouldBlock) {
			return
		}
		if err != nil {
			cl.fail(fmt.Errorf("response body cut short: %w", err))
			return
		}
	}
	sc := cl.sc
	cl.l.p.forwarded(sc.resp.status, cl.x.start)
	err := sc.write(frameUnframed(cl.answer, cl.bodyAt, cl.chunked, true))
	cl.releaseAnswer()
	cl.finish(cl.keep && err == nil)
}

func (cl *lclient) releaseAnswer() {
	if cl.pooled != nil {
		answerBuffers.Put(cl.pooled)
		cl.pooled = nil
	}
	cl.answer, cl.body = nil, nil
}

// finish ends an exchange whose answer is written: its upstream
// connection goes back to the pool.
func (cl *lclient) finish(keep bool) {
	up := cl.up
	cl.up, up.cl = nil, nil
	if !cl.sc.resp.close && up.pc.br.Buffered() == 0 {
		cl.l.putIdle(up)
	} else {
		cl.l.closeSock(up.s)
	}
	cl.end(keep)
}

// upFail handles a failure of the upstream connection: a pooled one that
// the upstream closed while idle is retried once on a new one (GET and
// HEAD are idempotent), as client.roundTrip does.
func (cl *lclient) upFail(err error) {
	if up := cl.up; up != nil {
		cl.up, up.cl = nil, nil
		cl.l.closeSock(up.s)
	}
	if cl.reused && !cl.retried && errors.Is(err, errStale) {
		cl.retried = true
		cl.dial()
		return
	}
	cl.fail(err)
}

// abandon lets go of what the exchange holds: its upstream connection
// (closed), its dial (cancelled) and its answer buffer.
func (cl *lclient) abandon() {
	if up := cl.up; up != nil {
		cl.up, up.cl = nil, nil
		cl.l.closeSock(up.s)
	}
	if cl.cancel != nil {
		cl.cancel()
		cl.cancel = nil
	}
	cl.releaseAnswer()
}

// fail ends the exchange with a 502 (none when the client is gone).
func (cl *lclient) fail(err error) {
	cl.abandon()
	cl.end(cl.l.p.upstreamFailed(cl.sc, &cl.sc.req, err, cl.x.start))
}

// end ends an exchange and goes on to the next request, or closes.
func (cl *lclient) end(keep bool) {
	cl.gen++
	cl.state, cl.due = waiting, time.Time{}
	cl.sc.trim()
	if !keep || cl.sc.req.close {
		cl.shut()
		return
	}
	cl.next()
}

// timeout fires the client's timer.
func (cl *lclient) timeout(now time.Time) {
	switch cl.state {
	case waiting, flushing:
		// Idle, a header not sent in time, or an answer not taken.
		cl.close()
	case awaitingHeader:
		err := errHeaderTimeout
		if !now.Before(cl.x.deadline) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, os.ErrDeadlineExceeded)
		}
		cl.upFail(err)
	case readingBody:
		cl.fail(fmt.Errorf("response body cut short: %w", os.ErrDeadlineExceeded))
	}
}

// lend hands the exchange, client and upstream connection, to a
// goroutine that finishes it with blocking I/O (Proxy.relayLent), then
// hands both back.
func (cl *lclient) lend(e lentExchange) {
	e.x = cl.x
	l, up := cl.l, cl.up
	l.unregister(cl.s)
	l.unregister(up.s)
	if err := cl.s.lend(); err != nil {
		l.p.logger.Error("event-loop-lend", err)
		cl.close()
		return
	}
	if err := up.s.lend(); err != nil {
		l.p.logger.Error("event-loop-lend", err)
		cl.close()
		return
	}
	cl.state, cl.due = lentOut, time.Time{}
	sc := cl.sc
	sc.readBy, sc.writeBy = time.Time{}, time.Time{}
	go func() {
		keep, reusable := false, false
		defer func() {
			if v := recover(); v != nil {
				l.p.logger.Error("panic", fmt.Errorf("%v", v), lager.Data{"stack": string(debug.Stack())})
				keep, reusable = false, false
			}
			l.post(func() { l.safely(cl.s, func() { cl.returned(up, keep, reusable) }) })
		}()
		keep, reusable = l.p.relayLent(sc, up.pc, e)
	}()
}

// returned takes back a lent exchange's connections.
func (cl *lclient) returned(up *lupstream, keep, reusable bool) {
	l := cl.l
	// Handed back: an abort from here on closes at once.
	cl.state = waiting
	cl.up, up.cl = nil, nil
	cl.releaseAnswer()
	if !reusable || up.pc.br.Buffered() != 0 {
		l.closeSock(up.s)
	} else if l.take(up.s) == nil {
		l.putIdle(up)
	}
	if l.take(cl.s) != nil {
		cl.close()
		return
	}
	cl.end(keep)
}

// shut closes the connection once its last answer is written; after an
// error answer with input left unread it lingers, on a goroutine.
func (cl *lclient) shut() {
	if cl.sc.linger {
		cl.lingerClose()
		return
	}
	if len(cl.s.wq) > 0 {
		by := cl.s.writeBy
		if by.IsZero() {
			by = time.Now().Add(cl.l.srv.writeTimeout)
		}
		cl.state = flushing
		cl.setDue(by)
		return
	}
	cl.close()
}

func (cl *lclient) lingerClose() {
	l, s := cl.l, cl.s
	cl.state = closed
	delete(l.clients, cl)
	l.unregister(s)
	if err := s.lend(); err != nil {
		l.closeSock(s)
		l.srv.forget(cl.sc)
		return
	}
	sc := cl.sc
	go func() {
		if len(s.wq) > 0 {
			_ = s.SetWriteDeadline(time.Now().Add(lingerTimeout))
			_, _ = s.Write(nil)
		}
		sc.close()
	}()
}

// close closes the connection at once, abandoning its exchange.
func (cl *lclient) close() {
	if cl.state == closed {
		return
	}
	cl.abandon()
	cl.state = closed
	cl.gen++
	delete(cl.l.clients, cl)
	cl.l.closeSock(cl.s)
	cl.l.srv.forget(cl.sc)
}

// abort closes the connection (Server.Close, or a panic); a lent one
// closes when its goroutine hands it back.
func (cl *lclient) abort() {
	if cl.state == lentOut {
		cl.l.closeSock(cl.s)
		return
	}
	cl.close()
}

// lentExchange is the rest of an exchange a loop lends a goroutine.
type lentExchange struct {
	x checkedScrape
	// headerBy, unless zero, is when the response header, still to
	// read, is due.
	headerBy time.Time
	// head, unless nil, is the start of the answer (header and the body
	// read so far, framed) and body the rest to stream, in chunks when
	// chunked; keep is as answerHead's.
	head          []byte
	body          io.Reader
	chunked, keep bool
}

// relayLent finishes on a goroutine an exchange a loop lent it: the
// response header first, if still to read, then the answer, or the rest
// of one begun. It reports whether the client connection may carry
// another request, and whether pc may carry another exchange.
func (p *Proxy) relayLent(c *serverConn, pc *conn, e lentExchange) (keep, reusable bool) {
	r, resp, x := &c.req, &c.resp, e.x
	w := c.watch()
	w.start()
	needHeader := !e.headerBy.IsZero()
	by := x.deadline
	if needHeader {
		by = e.headerBy
	}
	err := errClientGone
	if w.attach(pc, nil) && w.setDeadline(pc, by, true) {
		err = nil
		if needHeader {
			err = p.client.readHeader(w, pc, r.method, x.deadline, resp)
		}
	}
	if err == nil && needHeader && !w.setDeadline(pc, x.deadline, true) {
		err = errClientGone
	}
	if err != nil {
		w.stop()
		if w.isGone() {
			err = errClientGone
		}
		return p.upstreamFailed(c, r, err, x.start), false
	}
	if e.head == nil {
		return p.relay(c, r, pc, resp, x.start, w)
	}
	keep, complete := p.stream(c, r, resp.status, e.head, e.body, e.chunked, e.keep, x.start)
	w.stop()
	return keep, complete && !resp.close && !w.isGone()
}
