package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/scrape"
)

// MaxRequestURI is the longest request target the proxy accepts. Scrape URLs
// are a few hundred bytes; the CF router's own front proxy refuses request
// lines over about 8 KB.
const MaxRequestURI = 8 << 10

// smallBody is the largest response body read whole before anything is
// written to the client, so that head and body leave in one write and a
// body cut short still gets a 502. Larger bodies are streamed.
const smallBody = 64 << 10

// checkedScrape is a checked scrape, ready to go upstream.
type checkedScrape struct {
	host     string // the upstream host (and Host header)
	head     []byte // the request header to send
	start    time.Time
	deadline time.Time // the end of the whole exchange
}

// exchange sends the checked scrape x upstream and answers r with the
// response, on the connection's goroutine. It reports whether the client
// connection may carry another request.
func (p *Proxy) exchange(c *serverConn, r *request, x checkedScrape) bool {
	w := c.watch()
	w.start()
	resp := &c.resp
	pc, err := p.client.roundTrip(w, r.method, x.host, x.head, x.deadline, resp)
	c.out = x.head[:0]
	if err != nil {
		w.stop()
		return p.upstreamFailed(c, r, err, x.start)
	}
	keep, reusable := p.relay(c, r, pc, resp, x.start, w)
	p.client.release(pc, reusable)
	return keep
}

// prepare checks the scrape r. Every check happens before anything is
// sent: a rejected request never reaches an upstream. A rejected one is answered (answered is
// true, keep whether the connection may carry another request); an
// accepted one is returned with its upstream request header built in
// c.out.
func (p *Proxy) prepare(c *serverConn, r *request) (x checkedScrape, keep, answered bool) {
	reject := func(status int, outcome, reason string) (checkedScrape, bool, bool) {
		return checkedScrape{}, p.reject(c, r, status, outcome, reason), true
	}
	if r.method != http.MethodGet && r.method != http.MethodHead {
		return reject(http.StatusMethodNotAllowed, OutcomeRejectedMethod, "method "+r.method+" is not allowed: only GET and HEAD are forwarded")
	}
	if len(r.target) > MaxRequestURI {
		return reject(http.StatusBadRequest, OutcomeRejectedParams, fmt.Sprintf("request target longer than %d bytes", MaxRequestURI))
	}
	u := r.url
	if u.Scheme != "http" {
		return reject(http.StatusBadRequest, OutcomeRejectedRequest, "only http:// URLs are forwarded (the scrape job uses scheme: http; the proxy talks https upstream)")
	}
	if u.User != nil {
		return reject(http.StatusBadRequest, OutcomeRejectedRequest, "credentials in the URL are not forwarded")
	}
	if !p.allow.Allows(u.Host) {
		return reject(http.StatusForbidden, OutcomeRejectedHost, fmt.Sprintf("host %q is not in ALLOWED_DOMAINS", u.Host))
	}
	if hasControl(u.Path) {
		return reject(http.StatusBadRequest, OutcomeRejectedParams, "control character in the URL path")
	}
	if c.scrapeParams == nil {
		c.scrapeParams = make(url.Values, 3)
	}
	query, err := splitQuery(u.RawQuery, c.scrapeParams)
	if err != nil {
		return reject(http.StatusBadRequest, OutcomeRejectedParams, err.Error())
	}
	params, hasParams, err := scrape.Parse(c.scrapeParams)
	if err != nil {
		return reject(http.StatusBadRequest, OutcomeRejectedParams, err.Error())
	}
	x.host = upstreamHost(u.Host)
	x.start = time.Now()
	x.deadline = x.start.Add(p.overall)
	x.head = appendRequestHead(c.out[:0], r, x.host, query, params, hasParams)
	return x, false, false
}

// relay answers r with the upstream response whose header is in resp,
// reading its body from pc, while w watches the client. It reports whether
// the client connection may carry another request, and whether pc may
// carry another exchange.
func (p *Proxy) relay(c *serverConn, r *request, pc *conn, resp *response, start time.Time, w *clientWatch) (keep, reusable bool) {
	keep, complete, err := p.answer(c, r, pc, resp, start)
	w.stop()
	gone := w.isGone()
	reusable = complete && !resp.close && !gone
	if err != nil && gone {
		err = errClientGone
	}
	if err != nil {
		// Nothing was written: the body was cut short before it began.
		return p.upstreamFailed(c, r, err, start), reusable
	}
	return keep, reusable
}

// forwarded counts a forwarded response whose body has been read, before
// its last bytes are written: a client that has the whole response sees it
// counted.
func (p *Proxy) forwarded(status int, start time.Time) {
	p.metrics.upstream.Observe(time.Since(start).Seconds())
	p.metrics.count(OutcomeForwarded, status)
}

// answerHead builds in c.out the status line and header of the answer to
// r from resp: the upstream's fields without hop-by-hop ones (the router's
// X-Cf-Routererror kept), framed for the client. keep reports whether the
// client connection may carry another request, noBody whether the answer
// has no body, chunked whether its body goes in chunks.
func (p *Proxy) answerHead(c *serverConn, r *request, resp *response) (b []byte, keep, noBody, chunked bool) {
	b = append(c.out[:0], "HTTP/1.1 "...)
	b = append(b, resp.statusLine...)
	b = append(b, "\r\n"...)
	for _, f := range resp.fields {
		if hopByHopField(f.name) || listedIn(resp.fields, f.name) || equalFold(f.name, "Content-Length") {
			continue // the framing is the proxy's own, added below
		}
		b = appendCanonical(b, f.name)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	keep = !r.close
	noBody = answersNoBody(r, resp)
	switch {
	case noBody:
		if resp.contentLength >= 0 && resp.status >= 200 && resp.status != http.StatusNoContent {
			b = appendContentLength(b, resp.contentLength)
		}
	case resp.contentLength >= 0:
		b = appendContentLength(b, resp.contentLength)
	case r.minor >= 1:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		chunked = true
	default:
		// An HTTP/1.0 client: the body ends with the connection.
		keep = false
	}
	b = c.appendConnection(b, r, keep)
	keep = keep && !r.close
	b = append(b, "\r\n"...)
	return b, keep, noBody, chunked
}

// answersNoBody reports whether the answer to r with resp has no body.
func answersNoBody(r *request, resp *response) bool {
	return r.method == http.MethodHead || resp.status < 200 ||
		resp.status == http.StatusNoContent || resp.status == http.StatusNotModified
}

// answer writes the upstream's response to the client: the header of
// answerHead, then the body. keep reports whether
// the client connection may carry another request, complete whether the
// upstream's body was read to its end. err is an upstream failure before
// anything was written, to answer with a 502.
func (p *Proxy) answer(c *serverConn, r *request, pc *conn, resp *response, start time.Time) (keep, complete bool, err error) {
	b, keep, noBody, chunked := p.answerHead(c, r, resp)
	defer func() { c.out = b[:0] }()
	if noBody {
		resp.bodyReader(pc.br, r.method) // settles resp.close for HEAD
		p.forwarded(resp.status, start)
		err := c.write(b)
		return keep && err == nil, true, nil
	}
	body := resp.bodyReader(pc.br, r.method)
	if resp.contentLength >= 0 && resp.contentLength <= smallBody {
		whole, pooled := bodyBuffer(b, int(resp.contentLength))
		if pooled != nil {
			defer answerBuffers.Put(pooled)
		}
		n := len(b)
		if _, err := io.ReadFull(body, whole[n:]); err != nil {
			return false, false, fmt.Errorf("response body cut short: %w", err)
		}
		p.forwarded(resp.status, start)
		err := c.write(whole)
		return keep && err == nil, true, nil
	}
	if resp.contentLength < 0 {
		// Unknown length: read whole when it fits, as the event loops do,
		// so that a body cut short is a 502 here too.
		buf := answerBuffers.Get().(*[]byte)
		defer answerBuffers.Put(buf)
		a := unframedBuffer(buf, b)
		bodyAt, limit := len(a), cap(a)-unframedTail
		for len(a) < limit {
			n, err := body.Read(a[len(a):limit])
			a = a[:len(a)+n]
			if err == io.EOF {
				p.forwarded(resp.status, start)
				err := c.write(frameUnframed(a, bodyAt, chunked, true))
				return keep && err == nil, true, nil
			}
			if err != nil {
				return false, false, fmt.Errorf("response body cut short: %w", err)
			}
		}
		b = frameUnframed(a, bodyAt, chunked, false)
	}
	keep, complete = p.stream(c, r, resp.status, b, body, chunked, keep, start)
	return keep, complete, nil
}

// A body of unknown length (chunked, or ended by the upstream closing) is
// read after the answer's header and room for the line that frames it as
// one chunk, and answered in one write when it ends before the buffer is
// full: header, chunk-size line, body, CRLF and last chunk (unframedTail
// bytes are kept free for these two). One that outgrows the buffer is
// streamed on after what was read.
const (
	chunkLineRoom = 18
	unframedTail  = len("\r\n") + len("0\r\n\r\n")
)

// unframedBuffer returns the pooled buffer holding head and room for a
// chunk-size line.
func unframedBuffer(pooled *[]byte, head []byte) []byte {
	return append(append((*pooled)[:0], head...), make([]byte, chunkLineRoom)...)
}

// frameUnframed returns the answer in a (header, room, then from bodyAt
// the body read so far) as it is sent: the header, then the body framed
// as one chunk when chunked, and the last chunk when last. The header is
// moved next to the body, in place.
func frameUnframed(a []byte, bodyAt int, chunked, last bool) []byte {
	head := bodyAt - chunkLineRoom
	size := len(a) - bodyAt
	start := bodyAt // where the header is moved to end
	if chunked && size > 0 {
		var line [chunkLineRoom]byte
		l := append(strconv.AppendInt(line[:0], int64(size), 16), "\r\n"...)
		start -= len(l)
		copy(a[start:], l)
	}
	copy(a[start-head:], a[:head])
	a = a[start-head:]
	if chunked {
		if size > 0 {
			a = append(a, "\r\n"...)
		}
		if last {
			a = append(a, lastChunk...)
		}
	}
	return a
}

// stream writes head (the answer's header, and any of its body read
// already, framed), then streams the rest of body, in chunks when
// chunked. keep and complete are as answer's.
func (p *Proxy) stream(c *serverConn, r *request, status int, head []byte, body io.Reader, chunked, keep bool, start time.Time) (bool, bool) {
	if err := c.write(head); err != nil {
		p.forwarded(status, start)
		return false, false
	}
	complete, err := c.copyBody(body, chunked)
	p.forwarded(status, start)
	if err == nil && chunked {
		err = c.write(lastChunk)
	}
	if err != nil {
		data := lager.Data{"host": r.url.Host, "path": r.url.Path, "error": err.Error()}
		if c.watch().isGone() {
			p.logger.Debug("client-gone", data)
		} else {
			p.logger.Info("response-body-failed", data)
		}
		// The status is already sent: close the connection, so that the
		// client sees a truncated response rather than a short complete one.
		return false, complete
	}
	return keep, complete
}

// appendContentLength appends a Content-Length field.
func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

// bodyBuffer returns b extended by n bytes for a body. Past the
// connection's own buffer's capacity it is a copy of b in a pooled buffer
// (pooled, to put back once written): the connection's buffer would keep
// the body between scrapes, or grow again at every one.
func bodyBuffer(b []byte, n int) (whole []byte, pooled *[]byte) {
	whole = b
	if len(b)+n > cap(b) {
		pooled = answerBuffers.Get().(*[]byte)
		whole = append((*pooled)[:0], b...)
	}
	return slices.Grow(whole, n)[:len(b)+n], pooled
}

// answerBuffers hold the answers, header and body, read whole before they
// are written (bodies up to smallBody) that do not fit the connection's
// own buffer.
var answerBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, smallBody+8<<10)
	return &b
}}

// lastChunk ends a chunked body (without trailers).
var lastChunk = []byte("0\r\n\r\n")

// copyBuffers hold the buffers bodies are streamed through.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// copyBody streams body to the client, in chunked framing (without the
// last chunk) when chunked. complete reports whether body was read to its
// end.
func (c *serverConn) copyBody(body io.Reader, chunked bool) (complete bool, err error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// Room before the data for a chunk header, and after it for its CRLF
	// and the last chunk.
	const before, after = 18, 7
	data := (*buf)[before : len(*buf)-after]
	for {
		n, rerr := body.Read(data)
		if n > 0 {
			out := data[:n]
			if chunked {
				size := strconv.AppendInt(make([]byte, 0, 16), int64(n), 16)
				start := before - len(size) - 2
				copy((*buf)[start:], size)
				copy((*buf)[before-2:], "\r\n")
				out = append((*buf)[start:before+n], "\r\n"...)
			}
			if err := c.write(out); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF {
			return true, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
}

// upstreamFailed answers 502 with the reason, unless the client has gone
// away already (Prometheus' scrape_timeout fired), which is no failure of the
// upstream's. Either way the exchange's time since start is observed as
// upstream latency. It reports whether the client connection may carry
// another request.
func (p *Proxy) upstreamFailed(c *serverConn, r *request, err error, start time.Time) bool {
	p.metrics.upstream.Observe(time.Since(start).Seconds())
	data := lager.Data{"host": r.url.Host, "path": r.url.Path, "error": err.Error()}
	if errors.Is(err, errClientGone) {
		p.metrics.count(OutcomeClientGone, 499)
		p.logger.Debug("client-gone", data)
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no complete answer within %s: %w", p.overall, err)
		data["error"] = err.Error()
	}
	p.metrics.count(OutcomeUpstreamError, http.StatusBadGateway)
	p.logger.Info("upstream-failed", data)
	return c.writeText(r, http.StatusBadGateway, "paas-proxy: upstream "+r.url.Host+" failed: "+err.Error(), "") == nil && !r.close
}

// defaultUserAgent is sent when the client sends no User-Agent, as
// net/http's client does.
const defaultUserAgent = "Go-http-client/1.1"

// appendRequestHead appends the HTTP/1.1 request header sent upstream for r
// to b: r's method, its path with query (the scrape parameters removed),
// host as Host, and the client's header without hop-by-hop fields and
// without the fields the proxy alone sets: a client can never choose the
// instance or the bearer token other than through the scrape parameters.
func appendRequestHead(b []byte, r *request, host, query string, params scrape.Params, hasParams bool) []byte {
	b = append(b, r.method...)
	b = append(b, ' ')
	if path := r.url.EscapedPath(); path != "" {
		b = append(b, path...)
	} else {
		b = append(b, '/')
	}
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if _, ok := headerValue(r.fields, "User-Agent"); !ok {
		b = appendField(b, "User-Agent", defaultUserAgent)
	}
	for _, f := range r.fields {
		if hopByHopField(f.name) || listedIn(r.fields, f.name) || proxySets(f.name) {
			continue
		}
		if equalFold(f.name, "User-Agent") && f.value == "" {
			continue
		}
		b = appendField(b, f.name, f.value)
	}
	if hasParams {
		b = params.AppendHeader(b)
	}
	return append(b, "\r\n"...)
}

// proxySets reports whether the proxy alone sets the field name upstream:
// the scrape headers, Host, and the framing of the (empty) request body.
func proxySets(name string) bool {
	for _, k := range [...]string{"Authorization", scrape.HeaderAppInstance, scrape.HeaderAppInstanceCopy,
		"Host", "Content-Length", "Transfer-Encoding", "Expect"} {
		if equalFold(name, k) {
			return true
		}
	}
	return false
}

// appendField appends one header field, its name in canonical form.
// Values come from parsed headers or validated parameters and hold no CR
// or LF; any that did would be turned into a space, as net/http's client
// does.
func appendField(b []byte, k, v string) []byte {
	b = appendCanonical(b, k)
	b = append(b, ": "...)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, "\r\n"...)
}

// hopByHopField reports whether a header field is a hop-by-hop field (RFC
// 9110 section 7.6.1, plus the non-standard ones proxies still see).
func hopByHopField(name string) bool {
	for _, k := range [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if equalFold(name, k) {
			return true
		}
	}
	return false
}

// listedIn reports whether a Connection field of fields names name.
func listedIn(fields []field, name string) bool {
	for _, f := range fields {
		if equalFold(f.name, "Connection") && hasToken(f.value, name) {
			return true
		}
	}
	return false
}

// upstreamHost is the scrape URL's host, lower case and without a trailing
// dot, port kept: the name the router knows the route by.
func upstreamHost(hostport string) string {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i:]
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")) + port
}

// splitQuery separates the scrape parameters from the others in a raw query.
// query is the raw query without them, the others kept in their order and
// encoding; scrape receives the decoded scrape parameters (its slices are
// emptied first: an empty one means absent). Keys or values with control
// characters (%0d%0a and the like) or malformed escapes are errors.
func splitQuery(raw string, params url.Values) (query string, err error) {
	for _, k := range [...]string{scrape.ParamAppGUID, scrape.ParamAppInstance, scrape.ParamAppInstanceIndex} {
		params[k] = params[k][:0]
	}
	var kept strings.Builder
	found := false
	for rest := raw; rest != ""; {
		var field string
		field, rest, _ = strings.Cut(rest, "&")
		if field == "" {
			continue
		}
		if strings.Contains(field, ";") {
			return "", errors.New("semicolon in the query")
		}
		rawKey, rawValue, _ := strings.Cut(field, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return "", fmt.Errorf("malformed query: %w", err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return "", fmt.Errorf("malformed query parameter %q: %w", key, err)
		}
		if hasControl(key) || hasControl(value) {
			return "", fmt.Errorf("control character in query parameter %q", key)
		}
		switch key {
		case scrape.ParamAppGUID, scrape.ParamAppInstance, scrape.ParamAppInstanceIndex:
			params[key] = append(params[key], value)
			found = true
			continue
		}
		if kept.Len() > 0 {
			kept.WriteByte('&')
		}
		kept.WriteString(field)
	}
	if !found {
		return raw, nil
	}
	return kept.String(), nil
}

// hasControl reports whether s holds an ASCII control character (CR, LF,
// NUL, DEL, ...), which must never reach a header or a log line.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
