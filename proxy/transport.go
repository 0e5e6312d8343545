package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Upstream connection pool. A Prometheus host scrapes each app instance
// every scrape interval over the app's route; keeping connections open
// between scrapes saves a TCP and TLS handshake per scrape.
const (
	maxIdleConns           = 4096
	maxIdleConnsPerHost    = 128
	idleConnTimeout        = 90 * time.Second
	tlsSessionCacheSize    = 1024
	maxResponseHeaderBytes = 64 << 10
	readBufferSize         = 32 << 10
)

// errHeaderTimeout is the failure when the upstream sends no response
// header within Timeouts.ResponseHeader.
var errHeaderTimeout = errors.New("timeout awaiting response headers")

// errHeaderTooLarge is the failure when the upstream's response header
// exceeds maxResponseHeaderBytes.
var errHeaderTooLarge = fmt.Errorf("response header exceeds %d bytes", maxResponseHeaderBytes)

// client is the upstream HTTP/1.1 client: verified TLS with the scrape URL's
// host as server name, pooled keep-alive connections per upstream host (as
// the nginx it replaces spoke to the router), and no proxy from the
// environment (the proxy is the last hop before the router). Each exchange
// runs on the calling goroutine: a request is written and its response read
// on the handler's own goroutine, without the hand-offs of http.Transport.
type client struct {
	tls           bool
	addr          string // UPSTREAM_ADDR, or "" to dial the scrape host
	dialer        net.Dialer
	tlsConfig     *tls.Config
	handshake     time.Duration
	headerTimeout time.Duration

	mu      sync.Mutex
	hosts   map[string]*hostPool
	idle    int  // idle connections over all hosts
	pruning bool // a prune is scheduled
}

// hostPool holds one upstream host's idle connections, most recent last.
type hostPool struct {
	owner     *client
	host      string // the Host header: lower case, port kept
	dialAddr  string
	tlsConfig *tls.Config // ServerName set; nil over plain http
	idle      []*conn
}

// conn is one upstream connection.
type conn struct {
	net.Conn
	raw       net.Conn // the socket under TLS (Conn itself over http)
	br        *bufio.Reader
	pool      *hostPool
	idleSince time.Time
	budget    int // bytes the response header may still take; <0: no limit
}

// Read reads from the connection, failing once a response header has taken
// more than its budget.
func (c *conn) Read(p []byte) (int, error) {
	if c.budget >= 0 {
		if c.budget == 0 {
			return 0, errHeaderTooLarge
		}
		p = p[:min(len(p), c.budget)]
	}
	n, err := c.Conn.Read(p)
	if c.budget >= 0 {
		c.budget -= n
	}
	return n, err
}

func newClient(o Options) *client {
	c := &client{
		tls:           o.UpstreamScheme == "https",
		addr:          o.UpstreamAddr,
		dialer:        net.Dialer{Timeout: o.Timeouts.Dial, KeepAlive: 30 * time.Second},
		handshake:     o.Timeouts.TLSHandshake,
		headerTimeout: o.Timeouts.ResponseHeader,
		hosts:         make(map[string]*hostPool),
	}
	if c.tls {
		if o.TLSConfig != nil {
			c.tlsConfig = o.TLSConfig.Clone()
		} else {
			c.tlsConfig = &tls.Config{}
		}
		if c.tlsConfig.MinVersion < tls.VersionTLS12 {
			c.tlsConfig.MinVersion = tls.VersionTLS12
		}
		if c.tlsConfig.ClientSessionCache == nil {
			c.tlsConfig.ClientSessionCache = tls.NewLRUClientSessionCache(tlsSessionCacheSize)
		}
		// HTTP/1.1 only, whatever the base configuration says.
		c.tlsConfig.NextProtos = nil
	}
	return c
}

// pool returns the pool for host (the Host header), creating it.
func (c *client) pool(host string) *hostPool {
	if p := c.hosts[host]; p != nil {
		return p
	}
	p := c.newHostPool(host)
	c.hosts[host] = p
	return p
}

// newHostPool returns a pool for host, not yet the client's.
func (c *client) newHostPool(host string) *hostPool {
	name, port := splitHostPort(host)
	p := &hostPool{owner: c, host: host, dialAddr: c.addr}
	if p.dialAddr == "" {
		if port == "" {
			port = "80"
			if c.tls {
				port = "443"
			}
		}
		p.dialAddr = net.JoinHostPort(name, port)
	}
	if c.tls {
		// Each host its own server name: a fixed one would send every
		// scrape's SNI to one name.
		p.tlsConfig = c.tlsConfig.Clone()
		p.tlsConfig.ServerName = name
	}
	return p
}

// get returns an idle connection to host, or nil and the host's pool.
func (c *client) get(host string) (*conn, *hostPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pool(host)
	for n := len(p.idle); n > 0; n = len(p.idle) {
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		c.idle--
		if time.Since(pc.idleSince) < idleConnTimeout {
			return pc, p
		}
		_ = pc.Close()
	}
	return nil, p
}

// put returns a connection whose response has been read in full to its
// pool, or closes it when the pool is full.
func (c *client) put(pc *conn) {
	pc.idleSince = time.Now()
	c.mu.Lock()
	p := pc.pool
	switch current := c.hosts[p.host]; {
	case current == nil:
		// Pruned while the connection was busy.
		c.hosts[p.host] = p
	case current != p:
		p = nil
	}
	if p == nil || c.idle >= maxIdleConns || len(p.idle) >= maxIdleConnsPerHost {
		c.mu.Unlock()
		_ = pc.Close()
		return
	}
	p.idle = append(p.idle, pc)
	c.idle++
	if !c.pruning {
		c.pruning = true
		time.AfterFunc(idleConnTimeout, c.prune)
	}
	c.mu.Unlock()
}

// prune closes the connections idle for longer than idleConnTimeout and
// forgets hosts without idle connections, so that routes no longer scraped
// hold no sockets.
func (c *client) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruning = false
	for host, p := range c.hosts {
		kept := p.idle[:0]
		for _, pc := range p.idle {
			if time.Since(pc.idleSince) < idleConnTimeout {
				kept = append(kept, pc)
				continue
			}
			_ = pc.Close()
			c.idle--
		}
		clear(p.idle[len(kept):])
		p.idle = kept
		if len(p.idle) == 0 {
			delete(c.hosts, host)
		}
	}
	if c.idle > 0 {
		c.pruning = true
		time.AfterFunc(idleConnTimeout/2, c.prune)
	}
}

// closeIdle closes every idle connection.
func (c *client) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for host, p := range c.hosts {
		for _, pc := range p.idle {
			_ = pc.Close()
		}
		delete(c.hosts, host)
	}
	c.idle = 0
}

// dial opens a new connection to p's host, with the TLS handshake done.
// With forLoop, the socket is made ready for an event loop to own once
// dialled (see sockConn).
func (c *client) dial(ctx context.Context, p *hostPool, forLoop bool) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", p.dialAddr)
	if err != nil {
		return nil, err
	}
	if forLoop {
		nc = newSockConn(nc)
	}
	raw := nc
	if p.tlsConfig != nil {
		tc := tls.Client(nc, p.tlsConfig)
		hctx, cancel := context.WithTimeout(ctx, c.handshake)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = nc.Close()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return nil, errors.New("TLS handshake timeout")
			}
			return nil, err
		}
		nc = tc
	}
	pc := &conn{Conn: nc, raw: raw, pool: p, budget: -1}
	pc.br = bufio.NewReaderSize(pc, readBufferSize)
	return pc, nil
}

// release ends an exchange on pc: the connection goes back to the pool when
// its response was read to the end and it may carry another, else it is
// closed. Bytes already received past the response (an upstream that sent
// more than it framed) would be read as the next scrape's answer: such a
// connection is closed too.
func (c *client) release(pc *conn, reusable bool) {
	if reusable && pc.br.Buffered() == 0 {
		c.put(pc)
		return
	}
	_ = pc.Close()
}

// roundTrip sends head (a GET or HEAD request header, ending in an empty
// line) to host and reads the response header into resp. The caller reads
// the body from the returned connection (resp.bodyReader) and then calls
// release. deadline bounds the whole exchange; w aborts it at once when the
// client hangs up.
func (c *client) roundTrip(w *clientWatch, method, host string, head []byte, deadline time.Time, resp *response) (*conn, error) {
	pc, p := c.get(host)
	for attempt := 0; ; attempt++ {
		reused := pc != nil
		if !reused {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			if !w.attach(nil, cancel) {
				cancel()
				return nil, errClientGone
			}
			var err error
			pc, err = c.dial(ctx, p, false)
			cancel()
			if err != nil {
				if w.isGone() {
					return nil, errClientGone
				}
				if ctx.Err() != nil && time.Now().After(deadline) {
					err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
				}
				return nil, err
			}
		}
		if !w.attach(pc, nil) {
			_ = pc.Close()
			return nil, errClientGone
		}
		err := c.send(w, pc, method, head, deadline, resp)
		if err == nil {
			return pc, nil
		}
		_ = pc.Close()
		if w.isGone() {
			return nil, errClientGone
		}
		// A pooled connection the upstream closed while it was idle fails
		// before any byte of a response: try once more on a new one (GET and
		// HEAD are idempotent).
		if reused && attempt == 0 && errors.Is(err, errStale) {
			pc = nil
			continue
		}
		return nil, err
	}
}

// errStale marks a failure on a connection before any byte of the response
// was read.
var errStale = errors.New("connection closed before a response")

type staleError struct{ err error }

func (e staleError) Error() string        { return e.err.Error() }
func (e staleError) Unwrap() []error      { return []error{e.err, errStale} }
func (e staleError) Is(target error) bool { return target == errStale }

// send writes head on pc and reads the response header into resp. On
// failure the caller closes pc.
func (c *client) send(w *clientWatch, pc *conn, method string, head []byte, deadline time.Time, resp *response) error {
	headerDeadline := time.Now().Add(c.headerTimeout)
	if deadline.Before(headerDeadline) {
		headerDeadline = deadline
	}
	// One deadline for sending the request and receiving the response
	// header, the common case's only one.
	if !w.setDeadline(pc, headerDeadline, true) {
		return errClientGone
	}
	if _, err := pc.Write(head); err != nil {
		return exchangeError(staleError{err}, deadline)
	}
	pc.budget = maxResponseHeaderBytes
	return c.readHeader(w, pc, method, deadline, resp)
}

// exchangeError is err, a failure awaiting a response header, with a
// timeout named after the deadline it met: the exchange's (deadline), or
// the header's.
func exchangeError(err error, deadline time.Time) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return errHeaderTimeout
	}
	return err
}

// readHeader reads the response header on pc into resp, once the request
// has been sent with the header deadline and pc.budget set.
func (c *client) readHeader(w *clientWatch, pc *conn, method string, deadline time.Time, resp *response) error {
	if _, err := pc.br.Peek(1); err != nil {
		return exchangeError(staleError{err}, deadline)
	}
	for {
		if err := readResponse(pc.br, resp); err != nil {
			return exchangeError(err, deadline)
		}
		if resp.status == http.StatusSwitchingProtocols {
			// The request asked for no upgrade (Upgrade is hop-by-hop).
			return errors.New("the upstream switched protocols unasked")
		}
		// Skip informational responses (103 Early Hints and the like).
		if resp.status >= 200 {
			break
		}
	}
	pc.budget = -1
	if method != http.MethodHead && resp.status != http.StatusNoContent && resp.status != http.StatusNotModified &&
		(resp.contentLength < 0 || int64(pc.br.Buffered()) < resp.contentLength) {
		// Some of the body is still to come.
		if !w.setDeadline(pc, deadline, false) {
			return errClientGone
		}
	}
	return nil
}

// splitHostPort splits a URL host into its name (without IPv6 brackets) and
// port ("" when absent).
func splitHostPort(hostport string) (name, port string) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, ""
		}
		name, rest := hostport[1:end], hostport[end+1:]
		return name, strings.TrimPrefix(rest, ":")
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		return hostport[:i], hostport[i+1:]
	}
	return hostport, ""
}
