package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/alphagov/cf-app-discovery/targets"
)

// MaxRequestURI is the longest request target the proxy accepts. Scrape URLs
// are a few hundred bytes; the CF router's own front proxy refuses request
// lines over about 8 KB.
const MaxRequestURI = 8 << 10

// forward checks a scrape and sends it upstream. Every check happens before
// anything is sent: a rejected request never reaches an upstream.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p.reject(w, r, http.StatusMethodNotAllowed, OutcomeRejectedMethod, "method "+r.Method+" is not allowed: only GET and HEAD are forwarded")
		return
	}
	if len(r.RequestURI) > MaxRequestURI {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedParams, fmt.Sprintf("request target longer than %d bytes", MaxRequestURI))
		return
	}
	if r.URL.Scheme != "http" {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedRequest, "only http:// URLs are forwarded (the scrape job uses scheme: http; the proxy talks https upstream)")
		return
	}
	if r.URL.User != nil {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedRequest, "credentials in the URL are not forwarded")
		return
	}
	if !p.allow.Allows(r.URL.Host) {
		p.reject(w, r, http.StatusForbidden, OutcomeRejectedHost, fmt.Sprintf("host %q is not in ALLOWED_DOMAINS", r.URL.Host))
		return
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedRequest, "a scrape has no request body")
		return
	}
	if hasControl(r.URL.Path) {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedParams, "control character in the URL path")
		return
	}
	query, scrape, err := splitQuery(r.URL.RawQuery)
	if err != nil {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedParams, err.Error())
		return
	}
	params, hasParams, err := targets.ParseScrapeParams(scrape)
	if err != nil {
		p.reject(w, r, http.StatusBadRequest, OutcomeRejectedParams, err.Error())
		return
	}

	host := upstreamHost(r.URL.Host)
	deadline := time.Now().Add(p.overall)
	buf := headBuffers.Get().(*[]byte)
	head := appendRequestHead((*buf)[:0], r, host, query, params, hasParams)
	start := time.Now()
	x, err := p.client.roundTrip(r.Context(), r.Method, host, head, deadline)
	*buf = head[:0]
	headBuffers.Put(buf)
	if err != nil {
		p.metrics.upstream.Observe(time.Since(start).Seconds())
		p.upstreamFailed(w, r, err)
		return
	}
	resp := x.resp

	copyResponseHeader(w.Header(), resp.Header)
	if _, ok := resp.Header["Content-Type"]; !ok {
		// Pass the absence on: no sniffed Content-Type.
		w.Header()["Content-Type"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	p.metrics.count(OutcomeForwarded, resp.StatusCode)
	if r.Method == http.MethodHead {
		x.release(true)
		p.metrics.upstream.Observe(time.Since(start).Seconds())
		return
	}
	err = copyBody(w, resp.Body)
	x.release(err == nil)
	p.metrics.upstream.Observe(time.Since(start).Seconds())
	if err != nil {
		p.logger.Info("response-body-failed", lager.Data{"host": r.URL.Host, "path": r.URL.Path, "error": err.Error()})
		// The status is already sent: abort the connection so that the
		// client sees a truncated response rather than a short complete one.
		panic(http.ErrAbortHandler)
	}
}

// copyBuffers hold the buffers bodies are copied through: metrics bodies are
// tens of kilobytes, and a buffer per response would be garbage at once.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// writerOnly hides the ResponseWriter's ReadFrom, which for bodies over
// 512 bytes writes the header in a packet of its own and then copies
// through a fresh 32 KiB buffer.
type writerOnly struct{ io.Writer }

func copyBody(w io.Writer, body io.Reader) error {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, err := io.CopyBuffer(writerOnly{w}, body, *buf)
	return err
}

// upstreamFailed answers 502 with the reason, unless the client has gone
// away already (Prometheus' scrape_timeout fired), which is no failure of the
// upstream's.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	data := lager.Data{"host": r.URL.Host, "path": r.URL.Path, "error": err.Error()}
	if r.Context().Err() != nil {
		p.metrics.count(OutcomeClientGone, 499)
		p.logger.Debug("client-gone", data)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no complete answer within %s: %w", p.overall, err)
		data["error"] = err.Error()
	}
	p.metrics.count(OutcomeUpstreamError, http.StatusBadGateway)
	p.logger.Info("upstream-failed", data)
	http.Error(w, "paas-proxy: upstream "+r.URL.Host+" failed: "+err.Error(), http.StatusBadGateway)
}

// Scrape parameters and the headers the proxy alone sets, in canonical form.
var (
	headerAppInstance     = http.CanonicalHeaderKey(targets.HeaderAppInstance)
	headerAppInstanceCopy = http.CanonicalHeaderKey(targets.HeaderAppInstanceCopy)
)

// headBuffers hold the request headers written upstream.
var headBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// scrapeHeaders hold the headers targets.ScrapeParams.SetHeaders sets, on
// their way into a request header.
var scrapeHeaders = sync.Pool{New: func() any { return make(http.Header, 3) }}

// defaultUserAgent is sent when the client sends no User-Agent, as
// net/http's client does.
const defaultUserAgent = "Go-http-client/1.1"

// appendRequestHead appends the HTTP/1.1 request header sent upstream for r
// to b: r's method, its path with query (the scrape parameters removed),
// host as Host, and the client's header without hop-by-hop fields and
// without the fields the proxy alone sets: a client can never choose the
// instance or the bearer token other than through the scrape parameters.
func appendRequestHead(b []byte, r *http.Request, host, query string, params targets.ScrapeParams, hasParams bool) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	if path := r.URL.EscapedPath(); path != "" {
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
	userAgent := defaultUserAgent
	if v, ok := r.Header["User-Agent"]; ok {
		userAgent = ""
		if len(v) > 0 {
			userAgent = v[0]
		}
	}
	if userAgent != "" {
		b = appendField(b, "User-Agent", userAgent)
	}
	connection := r.Header["Connection"]
	for k, vs := range r.Header {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop(ck) || listed(connection, ck) {
			continue
		}
		switch ck {
		case "Authorization", headerAppInstance, headerAppInstanceCopy,
			"Host", "User-Agent", "Content-Length":
			continue
		}
		for _, v := range vs {
			b = appendField(b, ck, v)
		}
	}
	if hasParams {
		h := scrapeHeaders.Get().(http.Header)
		params.SetHeaders(h)
		for k, vs := range h {
			for _, v := range vs {
				b = appendField(b, k, v)
			}
		}
		clear(h)
		scrapeHeaders.Put(h)
	}
	return append(b, "\r\n"...)
}

// appendField appends one header field, with any CR or LF of the value
// turned into a space (as net/http's client does).
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
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

// copyResponseHeader copies the upstream's response header, the router's
// X-Cf-Routererror included, without hop-by-hop fields.
func copyResponseHeader(dst, src http.Header) {
	connection := src["Connection"]
	for k, v := range src {
		if hopByHop(k) || listed(connection, k) {
			continue
		}
		dst[k] = v
	}
}

// hopByHop reports whether a canonical header name is a hop-by-hop field
// (RFC 9110 section 7.6.1, plus the non-standard ones proxies still see).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// listed reports whether the Connection header values name k.
func listed(connection []string, k string) bool {
	for _, v := range connection {
		for v != "" {
			var token string
			token, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(token), k) {
				return true
			}
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
// encoding; scrape holds the decoded scrape parameters, nil when there are
// none. Keys or values with control characters (%0d%0a and the like) or
// malformed escapes are errors.
func splitQuery(raw string) (query string, scrape url.Values, err error) {
	var kept strings.Builder
	for rest := raw; rest != ""; {
		var field string
		field, rest, _ = strings.Cut(rest, "&")
		if field == "" {
			continue
		}
		if strings.Contains(field, ";") {
			return "", nil, errors.New("semicolon in the query")
		}
		rawKey, rawValue, _ := strings.Cut(field, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return "", nil, fmt.Errorf("malformed query: %w", err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return "", nil, fmt.Errorf("malformed query parameter %q: %w", key, err)
		}
		if hasControl(key) || hasControl(value) {
			return "", nil, fmt.Errorf("control character in query parameter %q", key)
		}
		switch key {
		case targets.ParamAppGUID, targets.ParamAppInstance, targets.ParamAppInstanceIndex:
			if scrape == nil {
				scrape = make(url.Values, 3)
			}
			scrape[key] = append(scrape[key], value)
			continue
		}
		if kept.Len() > 0 {
			kept.WriteByte('&')
		}
		kept.WriteString(field)
	}
	if scrape == nil {
		return raw, nil, nil
	}
	return kept.String(), scrape, nil
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
