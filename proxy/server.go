package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"code.cloudfoundry.org/lager/v3"
)

// Server time limits. A client has readHeaderTimeout to send a request
// header once it has started one, and may keep an idle connection for
// idleTimeout between requests: Prometheus reuses its connection to the
// proxy from one scrape to the next. A response must be taken by the client
// within the upstream's overall timeout plus writeGrace.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 5 * time.Minute
	writeGrace        = 15 * time.Second
	// deadlineSlack is how stale a connection deadline may be before it is
	// set again: setting one costs more than the rest of a small scrape's
	// bookkeeping, and a second either way does not matter.
	deadlineSlack = time.Second
	// clientWatchDelay is how long an exchange runs before the proxy starts
	// watching its client for a hang-up, so that a scrape Prometheus gave up
	// on (scrape_timeout) releases its upstream connection at once. Almost
	// every scrape is answered sooner and never pays for the watch.
	clientWatchDelay = 100 * time.Millisecond
	// lingerTimeout and lingerBytes bound the wait for a client to take an
	// error answer before its connection closes (see serverConn.linger).
	lingerTimeout = 500 * time.Millisecond
	lingerBytes   = 256 << 10
)

// ErrServerClosed is returned by Server.Serve after Shutdown or Close.
var ErrServerClosed = errors.New("paas-proxy: server closed")

// Server serves a Proxy on TCP listeners: HTTP/1.1 (and 1.0) with
// keep-alive. On Linux its connections are served by event loops (see
// loop, Options.EventLoops); elsewhere, or with EventLoops below 0, each
// gets a goroutine, which reads a request, forwards it upstream and writes
// the answer, then waits for the next. It is paas-proxy's own lean server
// rather than net/http's (make bench-proxy compares it with nginx).
type Server struct {
	proxy        *Proxy
	writeTimeout time.Duration

	closing   atomic.Bool // Shutdown or Close was called
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	done      sync.WaitGroup
	// The event loops TCP connections are served on, started by the
	// first Serve.
	loops        []*loop
	loopsStarted bool
	nextLoop     atomic.Uint32
}

// wouldBlock is the error of a read on an event loop's socket with
// nothing to read yet (see sockConn): a temporary net.Error, which
// crypto/tls and bufio pass on without failing the connection for good.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "nothing to read yet" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock error = wouldBlock{}

// Server returns a Server for p.
func (p *Proxy) Server() *Server {
	return &Server{
		proxy:        p,
		writeTimeout: p.overall + writeGrace,
		listeners:    make(map[net.Listener]struct{}),
		conns:        make(map[*serverConn]struct{}),
	}
}

// Serve accepts connections on ln and serves them until Shutdown or Close,
// when it returns ErrServerClosed; any other accept failure is returned.
// Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.isClosed() {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors or memory, or a connection reset while
			// queued: wait and try again, as long as the listener is open.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.proxy.logger.Error("accept", err, lager.Data{"retry_in": backoff.String()})
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.adopt(nc) {
			continue
		}
		c := s.newConn(nc)
		if c == nil {
			_ = nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) isClosed() bool {
	return s.closing.Load()
}

// Shutdown stops accepting connections, closes idle ones, and waits until
// the requests in flight are answered and their connections closed, or ctx
// is done (its error is then returned and those connections are closed).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	finished := make(chan struct{})
	go func() {
		s.done.Wait()
		close(finished)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-finished:
			return nil
		case <-ctx.Done():
			s.closeAll()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops accepting connections and closes every connection at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.closeAll()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		_ = ln.Close()
	}
	go s.wakeLoops()
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.busy.Load() {
			_ = c.nc.Close()
		}
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
}

// serverConn is one client connection.
type serverConn struct {
	server *Server
	nc     net.Conn
	br     *bufio.Reader
	busy   atomic.Bool // reading or answering a request; Shutdown waits for it

	req          request
	resp         response
	scrapeParams url.Values // the scrape parameters of the request, reused
	out          []byte     // the response header (and a small body) being written
	readBy       time.Time  // the read deadline set on nc
	writeBy      time.Time  // the write deadline set on nc
	watching     *clientWatch
	// linger: the connection closes after an error answer with input left
	// unread; closing at once would reset it and lose the answer.
	linger bool
}

func (s *Server) newConn(nc net.Conn) *serverConn {
	c := &serverConn{server: s, nc: nc, br: bufio.NewReaderSize(nc, MaxHeaderBytes)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return nil
	}
	s.conns[c] = struct{}{}
	s.done.Add(1)
	return c
}

func (c *serverConn) close() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && c.linger {
		// Let the answer reach the client before the reset that closing a
		// socket with unread input sends.
		_ = cw.CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, lingerBytes))
	}
	_ = c.nc.Close()
	c.server.forget(c)
}

// forget drops a closed connection from the server's count.
func (s *Server) forget(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.done.Done()
}

// serve reads and answers requests until the client closes the connection,
// asks for it to be closed, or a request leaves it unusable.
func (c *serverConn) serve() {
	defer c.close()
	p := c.server.proxy
	defer func() {
		// One bad request must not take the proxy down (net/http's
		// server recovers likewise).
		if v := recover(); v != nil {
			p.logger.Error("panic", fmt.Errorf("%v", v), lager.Data{"stack": string(debug.Stack())})
		}
	}()
	for {
		c.busy.Store(false)
		if c.server.isClosed() {
			return
		}
		c.setReadDeadline(idleTimeout)
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.busy.Store(true)
		if !headerBuffered(c.br) {
			c.setReadDeadline(readHeaderTimeout)
		}
		if err := readRequest(c.br, &c.req); err != nil {
			var re *requestError
			if errors.As(err, &re) {
				p.rejectUnread(c, re)
			}
			return
		}
		// Back from a header deadline to one that outlasts the exchange,
		// so that the client watch sees the whole of it.
		c.setReadDeadline(idleTimeout)
		keep := p.serve(c, &c.req)
		c.trim()
		if !keep || c.req.close {
			return
		}
	}
}

// trimmedBuffer is the largest buffer a connection keeps between requests:
// an idle Prometheus connection holds no large body for minutes.
const trimmedBuffer = 16 << 10

// trim lets go of what the last exchange left: a large output buffer, and
// the upstream's header.
func (c *serverConn) trim() {
	if cap(c.out) > trimmedBuffer {
		c.out = nil
	}
	c.resp.release(trimmedBuffer)
}

// headerBuffered reports whether a whole request header is already
// buffered, as it almost always is: then no header deadline is needed.
func headerBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	// Empty lines before a request line do not end a header.
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\n' && (b[i+1] == '\n' || b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n') {
			return true
		}
	}
	return false
}

// setReadDeadline sets the read deadline to now+d unless the one set is
// within deadlineSlack of it.
func (c *serverConn) setReadDeadline(d time.Duration) {
	by := time.Now().Add(d)
	if diff := by.Sub(c.readBy); diff > deadlineSlack || diff < -deadlineSlack {
		c.readBy = by
		_ = c.nc.SetReadDeadline(by)
	}
}

// write writes b to the client, with the write deadline refreshed when it
// is more than deadlineSlack old.
func (c *serverConn) write(b []byte) error {
	by := time.Now().Add(c.server.writeTimeout)
	if by.Sub(c.writeBy) > deadlineSlack {
		c.writeBy = by
		_ = c.nc.SetWriteDeadline(by)
	}
	_, err := c.nc.Write(b)
	return err
}

// appendStatusLine appends "HTTP/1.1 <code> <text>\r\n".
func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

// appendConnection appends the Connection field the answer to r needs:
// close when the connection closes after it (also when the server is
// shutting down, so that the client knows), keep-alive when it does not
// and r is HTTP/1.0 (whose default is to close).
func (c *serverConn) appendConnection(b []byte, r *request, keep bool) []byte {
	if keep && c.server.isClosed() {
		keep, r.close = false, true
	}
	switch {
	case !keep:
		return append(b, "Connection: close\r\n"...)
	case r.minor == 0:
		return append(b, "Connection: keep-alive\r\n"...)
	}
	return b
}

// writeText answers status with a plain-text body (as http.Error does),
// closing the connection afterwards when the request had a body the proxy
// did not read, or the client asked for it. extra holds more header
// lines, each ending in CRLF.
func (c *serverConn) writeText(r *request, status int, text, extra string) error {
	b := appendStatusLine(c.out[:0], status)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)+1), 10)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	if r == nil || r.hasBody {
		c.linger = true
		if r != nil {
			r.close = true
		}
	}
	b = c.appendConnection(b, r, r != nil && !r.close)
	b = append(b, "\r\n"...)
	if r == nil || r.method != http.MethodHead {
		b = append(b, text...)
		b = append(b, '\n')
	}
	c.out = b[:0]
	return c.write(b)
}

// watch returns the connection's client watch.
func (c *serverConn) watch() *clientWatch {
	if c.watching == nil {
		c.watching = &clientWatch{c: c}
	}
	return c.watching
}

// serveHandler answers r with h (the proxy's own /health and /metrics),
// buffering h's response to send it with a Content-Length.
func (c *serverConn) serveHandler(r *request, h http.Handler) error {
	hr := &http.Request{
		Method: r.method, URL: r.url, RequestURI: r.target,
		Proto: "HTTP/1." + strconv.Itoa(r.minor), ProtoMajor: 1, ProtoMinor: r.minor,
		Header: make(http.Header, len(r.fields)), Host: r.host, Body: http.NoBody,
		RemoteAddr: c.nc.RemoteAddr().String(),
	}
	for _, f := range r.fields {
		hr.Header.Add(f.name, f.value)
	}
	w := &bufferedResponse{header: make(http.Header)}
	h.ServeHTTP(w, hr)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b := appendStatusLine(c.out[:0], w.status)
	for k, vs := range w.header {
		if hopByHopField(k) || equalFold(k, "Content-Length") {
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	b = appendContentLength(b, int64(w.body.Len()))
	b = c.appendConnection(b, r, !r.close)
	b = append(b, "\r\n"...)
	if r.method != http.MethodHead {
		b = append(b, w.body.Bytes()...)
	}
	c.out = b[:0]
	return c.write(b)
}

// bufferedResponse is the http.ResponseWriter of serveHandler.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
