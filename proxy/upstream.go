package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Upstream connections, kept from one scrape to the next: a scrape costs
// no TCP or TLS handshake.
const (
	dialTimeout            = 5 * time.Second
	handshakeTimeout       = 5 * time.Second
	maxConnsPerHost        = 512
	idleConnTimeout        = 90 * time.Second
	tlsSessionCacheSize    = 1024
	maxResponseHeaderBytes = 64 << 10 // the client's read buffer
)

// newClient returns the upstream client: fasthttp's, with a pool of
// connections per upstream host (as the nginx it replaces kept), requests
// and paths sent as they are, and connections dialled by dialer.
func newClient(o Options) *fasthttp.Client {
	d := &dialer{addr: o.UpstreamAddr, dial: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}}
	if o.UpstreamScheme == "https" {
		d.tls = &tls.Config{}
		if o.TLSConfig != nil {
			d.tls = o.TLSConfig.Clone()
		}
		d.tls.MinVersion = max(d.tls.MinVersion, tls.VersionTLS12)
		if d.tls.ClientSessionCache == nil {
			d.tls.ClientSessionCache = tls.NewLRUClientSessionCache(tlsSessionCacheSize)
		}
		d.tls.NextProtos = nil // HTTP/1.1 only, whatever the base says
	}
	return &fasthttp.Client{
		DialTimeout:              d.dialTimeout,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		MaxConnsPerHost:          maxConnsPerHost,
		MaxIdleConnDuration:      idleConnTimeout,
		ReadBufferSize:           maxResponseHeaderBytes,
		MaxResponseBodySize:      o.MaxBodyBytes,
		// One more attempt, on a new connection, when a pooled one turns
		// out to be unusable before the response began (see retryable).
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts == 1 && retryable(err)
		},
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			// Errors do not quote the upstream's bytes into the logs.
			hc.SecureErrorLogMessage = true
			return nil
		},
	}
}

// retryable reports whether err means that a pooled connection was found
// closed or unusable before any byte of a response: GET and HEAD are then
// sent again on a new one.
func retryable(err error) bool {
	return errors.Is(err, errUnusable) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dialer opens upstream connections: TCP to UPSTREAM_ADDR (or to the
// scrape host), then TLS with the scrape host as server name, verified.
type dialer struct {
	addr string // UPSTREAM_ADDR, or "" to dial the scrape host
	dial net.Dialer
	tls  *tls.Config // nil over plain http
}

// dialTimeout is the client's DialTimeout: hostport is the scrape URL's
// host with its port, timeout what is left of the scrape's.
func (d *dialer) dialTimeout(hostport string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	to := d.addr
	if to == "" {
		to = hostport
	}
	nc, err := d.dial.DialContext(ctx, "tcp", to)
	if err != nil {
		return nil, err
	}
	sock := &socket{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		sock.raw, _ = sc.SyscallConn()
	}
	c := &upstreamConn{Conn: sock, sock: sock}
	if d.tls == nil {
		return c, nil
	}
	host, _, _ := net.SplitHostPort(hostport) // fasthttp adds the port
	config := d.tls.Clone()
	config.ServerName = host
	tc := tls.Client(sock, config)
	hctx, hcancel := context.WithTimeout(ctx, handshakeTimeout)
	defer hcancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.Conn, c.tls = tc, tc
	return c, nil
}

// errUnusable is the failure to send a request on a pooled connection that
// has unread bytes or was closed by the upstream.
var errUnusable = errors.New("upstream connection closed, or with bytes no request asked for")

// upstreamConn is an upstream connection (over TLS, already handshaken, or
// plain TCP) that refuses to carry a request while bytes no request asked
// for wait on it, or once the upstream has closed it. fasthttp's client
// reuses a pooled connection without looking at it, so an upstream that
// sent more than it framed would have the rest read as the answer to the
// next scrape on the connection, which may be another app's. (net/http's
// client and nginx watch their idle connections for the same reason.)
type upstreamConn struct {
	net.Conn           // the TLS connection, or the socket
	tls      *tls.Conn // nil over plain http
	sock     *socket
	answered bool // a response has been read since the last request
	probe    [1]byte
}

// Handshake tells the client that the TLS handshake is done (in dial).
func (c *upstreamConn) Handshake() error { return nil }

func (c *upstreamConn) Read(b []byte) (int, error) {
	c.answered = true
	return c.Conn.Read(b)
}

// Write sends a request, unless the connection has been used and is not
// clean.
func (c *upstreamConn) Write(b []byte) (int, error) {
	if c.answered {
		c.answered = false
		if !c.clean() {
			return 0, errUnusable
		}
	}
	return c.Conn.Write(b)
}

// clean reports whether nothing waits to be read on the connection, and
// the upstream has not closed it: neither records the TLS layer has read
// already nor bytes in the socket.
func (c *upstreamConn) clean() bool {
	if c.tls != nil {
		// A read of what the TLS layer holds, with the socket closed to it.
		c.sock.probing = true
		n, err := c.tls.Read(c.probe[:])
		c.sock.probing = false
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
	}
	if c.sock.raw == nil {
		return true
	}
	clean := false
	// Control, not Read: Read refuses to run past the last read deadline.
	err := c.sock.raw.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), c.probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read. Otherwise bytes, the upstream's
		// close (0 bytes and no error), or a failed connection.
		clean = errors.Is(err, syscall.EAGAIN)
	})
	return clean && err == nil
}

// socket is the TCP connection of an upstreamConn. While probing, a read
// fails at once with a timeout, which the TLS layer takes for a passing
// failure.
type socket struct {
	net.Conn
	raw     syscall.RawConn
	probing bool
}

func (s *socket) Read(b []byte) (int, error) {
	if s.probing {
		return 0, os.ErrDeadlineExceeded
	}
	return s.Conn.Read(b)
}
