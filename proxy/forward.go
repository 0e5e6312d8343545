package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/valyala/fasthttp"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// HeaderScrapeTimeout is the header in which Prometheus sends a scrape's
// timeout, in seconds.
const HeaderScrapeTimeout = "X-Prometheus-Scrape-Timeout-Seconds"

// forwardedHeaders are the only client headers sent upstream, unchanged:
// those with which Prometheus negotiates the format and compression. A
// client chooses the instance and the bearer token through the scrape
// parameters alone.
var forwardedHeaders = [...]string{"Accept", "Accept-Encoding", "User-Agent", HeaderScrapeTimeout}

// returnedHeaders are the only upstream headers returned to the client,
// unchanged, with the status and the body: what Prometheus reads of the
// answer, and the router's explanation of a routing failure.
var returnedHeaders = [...]string{"Content-Type", "Content-Encoding", scrape.HeaderRouterError}

const noBody = "paas-proxy reads no request body: a scrape has none"

// serve answers one request: an absolute-form request is a scrape to
// forward, an origin-form one is for the proxy itself. The two cannot be
// confused: a proxied request is always in absolute form.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	defer p.recoverPanic(ctx)
	h := &ctx.Request.Header
	target := h.RequestURI()
	switch {
	case h.IsConnect():
		// Prometheus tunnels https scrapes, whose query the proxy cannot read.
		p.reject(ctx, http.StatusMethodNotAllowed, OutcomeRejectedMethod, "CONNECT is not supported: scrape with scheme: http", nil)
	case !h.IsGet() && !h.IsHead():
		p.reject(ctx, http.StatusMethodNotAllowed, OutcomeRejectedMethod, "method "+string(h.Method())+" is not allowed: only GET and HEAD", nil)
	case h.ContentLength() > 0 || h.ContentLength() == -1: // a length, or chunked
		ctx.SetConnectionClose()
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedRequest, noBody, nil)
	case len(target) > 0 && target[0] == '/':
		p.serveLocal(ctx, target)
	default:
		p.forward(ctx, target)
	}
}

// serveLocal answers GET /health and GET /metrics.
func (p *Proxy) serveLocal(ctx *fasthttp.RequestCtx, target []byte) {
	path, _, _ := strings.Cut(string(target), "?")
	switch {
	case path == "/health":
		p.metrics.count(OutcomeLocal, http.StatusOK)
		writeText(ctx, http.StatusOK, "ok")
	case path == "/metrics" && p.metricsHandler != nil:
		p.metrics.count(OutcomeLocal, http.StatusOK)
		p.metricsHandler(ctx)
	default:
		p.metrics.count(OutcomeNotFound, http.StatusNotFound)
		p.logger.Debug("not-found", lager.Data{"path": path})
		writeText(ctx, http.StatusNotFound, "404 page not found")
	}
}

// forward checks the scrape in target and, when it passes, forwards it.
// Every check happens before anything is sent: a rejected request never
// reaches an upstream.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, target []byte) {
	if len(target) > MaxRequestURI {
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedParams, fmt.Sprintf("request target longer than %d bytes", MaxRequestURI), nil)
		return
	}
	u := ctx.URI() // parsed by the server, which refused spaces and control characters
	switch {
	case len(target) < len("http://") || !strings.EqualFold(string(target[:len("http://")]), "http://"):
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedRequest, "only http:// URLs are forwarded (the scrape job uses scheme: http; the proxy talks https upstream)", u)
	case !p.allow.Allows(string(u.Host())):
		p.reject(ctx, http.StatusForbidden, OutcomeRejectedHost, fmt.Sprintf("host %q is not in ALLOWED_DOMAINS", u.Host()), u)
	case strings.ContainsFunc(string(u.Path()), isControl):
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedParams, "control character in the URL path", u)
	default:
		sp, ok, query, err := scrape.ParseQuery(string(u.QueryString()))
		if err != nil {
			p.reject(ctx, http.StatusBadRequest, OutcomeRejectedParams, err.Error(), u)
			return
		}
		p.exchange(ctx, u, query, sp, ok)
	}
}

// exchange sends the checked scrape upstream (the path as sent, query
// without the scrape parameters, with their headers) and answers with the
// upstream's response, or 502.
func (p *Proxy) exchange(ctx *fasthttp.RequestCtx, u *fasthttp.URI, query string, sp scrape.Params, hasParams bool) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)

	req.Header.SetMethodBytes(ctx.Method())
	to := req.URI()
	to.SetScheme(p.scheme)
	to.SetHost(upstreamHost(string(u.Host())))
	if path := u.PathOriginal(); len(path) > 0 {
		to.SetPathBytes(path)
	}
	to.SetQueryString(query)
	for _, name := range forwardedHeaders {
		if v := ctx.Request.Header.Peek(name); len(v) > 0 {
			req.Header.SetBytesV(name, v)
		}
	}
	if hasParams {
		for _, f := range sp.Headers() {
			req.Header.Set(f.Name, f.Value)
		}
	}
	resp.Header.SetNoDefaultContentType(true)

	timeout := p.timeout(ctx)
	start := time.Now()
	err := p.client.DoTimeout(req, resp, timeout)
	p.metrics.upstream.Observe(time.Since(start).Seconds())
	if err != nil {
		p.upstreamFailed(ctx, u, err, timeout)
		return
	}
	if resp.StatusCode() < 200 {
		// Only a 101 gets here (fasthttp skips the other 1xx answers),
		// though the request asked for no upgrade.
		p.upstreamFailed(ctx, u, errors.New("the upstream switched protocols unasked"), timeout)
		return
	}
	p.metrics.count(OutcomeForwarded, resp.StatusCode())
	ctx.SetStatusCode(resp.StatusCode())
	for _, name := range returnedHeaders {
		if v := resp.Header.Peek(name); len(v) > 0 {
			ctx.Response.Header.SetBytesV(name, v)
		}
	}
	if n := resp.Header.ContentLength(); ctx.IsHead() && n >= 0 {
		ctx.Response.Header.SetContentLength(n)
	}
	// The body changes hands without a copy; resp goes back to its pool
	// with the client's empty one.
	ctx.Response.SwapBody(resp.SwapBody(nil))
}

// timeout is how long the proxy waits for the upstream's whole answer:
// the scrape's own timeout, within the configured ceiling.
func (p *Proxy) timeout(ctx *fasthttp.RequestCtx) time.Duration {
	v := ctx.Request.Header.Peek(HeaderScrapeTimeout)
	if len(v) == 0 {
		return p.overall
	}
	s, err := strconv.ParseFloat(string(v), 64)
	if err != nil || !(s > 0) || s >= p.overall.Seconds() {
		return p.overall
	}
	return time.Duration(s * float64(time.Second))
}

// upstreamFailed answers 502 with the reason.
func (p *Proxy) upstreamFailed(ctx *fasthttp.RequestCtx, u *fasthttp.URI, err error, timeout time.Duration) {
	var t interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		err = fmt.Errorf("response body larger than %d bytes", p.maxBody)
	case errors.As(err, &t) && t.Timeout():
		err = fmt.Errorf("no complete answer within %s: %w", timeout, err)
	}
	p.metrics.count(OutcomeUpstreamError, http.StatusBadGateway)
	p.logger.Info("upstream-failed", lager.Data{"host": string(u.Host()), "path": string(u.Path()), "error": err.Error()})
	writeText(ctx, http.StatusBadGateway, "paas-proxy: upstream "+string(u.Host())+" failed: "+err.Error())
}

// reject answers status with reason in plain text, counts it and logs it.
// Neither the query (which carries the app guid, the app's bearer token)
// nor any header is logged.
func (p *Proxy) reject(ctx *fasthttp.RequestCtx, status int, outcome, reason string, u *fasthttp.URI) {
	p.metrics.count(outcome, status)
	data := lager.Data{"outcome": outcome, "status": status, "reason": reason, "method": string(ctx.Method())}
	if u != nil {
		data["host"], data["path"] = string(u.Host()), string(u.Path())
	}
	p.logger.Info("rejected", data)
	if status == http.StatusMethodNotAllowed {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
	}
	writeText(ctx, status, reason)
}

// unreadable answers a request the server could not read (a header over
// MaxHeaderBytes, a body over maxRequestBody, a malformed request); the
// server closes the connection after it.
func (p *Proxy) unreadable(ctx *fasthttp.RequestCtx, err error) {
	var tooLarge *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &tooLarge):
		p.reject(ctx, http.StatusRequestHeaderFieldsTooLarge, OutcomeRejectedRequest, fmt.Sprintf("request header longer than %d bytes", MaxHeaderBytes), nil)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedRequest, noBody, nil)
	default:
		p.reject(ctx, http.StatusBadRequest, OutcomeRejectedRequest, "malformed request", nil)
	}
}

// recoverPanic answers 500 and closes the connection when answering a
// request panics: one bad request must not take the proxy down.
func (p *Proxy) recoverPanic(ctx *fasthttp.RequestCtx) {
	if v := recover(); v != nil {
		p.logger.Error("panic", fmt.Errorf("%v", v), lager.Data{"stack": string(debug.Stack())})
		ctx.Response.Reset()
		ctx.SetConnectionClose()
		writeText(ctx, http.StatusInternalServerError, "paas-proxy: internal error")
	}
}

// writeText answers status with a plain-text body, as http.Error does.
func writeText(ctx *fasthttp.RequestCtx, status int, text string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBodyString(text + "\n")
}

// upstreamHost is the scrape URL's host (lower case already) without a
// trailing dot, port kept: the name the router knows the route by.
func upstreamHost(hostport string) string {
	if !strings.HasSuffix(hostport, ".") && !strings.Contains(hostport, ".:") {
		return hostport
	}
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i:]
	}
	return strings.TrimSuffix(host, ".") + port
}

// isControl reports whether r is an ASCII control character (CR, LF, NUL,
// DEL, ...), which must never reach a request line, a header or a log.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}
