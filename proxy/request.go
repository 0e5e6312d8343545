package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxHeaderBytes bounds a client's request line and header together. A
// scrape's are a few hundred bytes.
const MaxHeaderBytes = 16 << 10

// request is one request read from a client connection by readRequest: its
// request line and header, parsed once into the fields the proxy needs.
type request struct {
	method  string
	target  string   // the request-target as sent
	url     *url.URL // target parsed (url.ParseRequestURI); nil for CONNECT
	minor   int      // HTTP/1.<minor>
	fields  []field  // header fields in order, names as sent
	host    string   // the Host field
	hasBody bool     // Content-Length other than 0, or Transfer-Encoding
	close   bool     // the client wants the connection closed after this exchange

	line []byte // reusable buffer the header is read into
}

// requestError is a request fault: the status it is answered with, and
// why.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string { return e.reason }

// tooLong answers a request header over MaxHeaderBytes.
var tooLong = &requestError{status: 431, reason: fmt.Sprintf("request header longer than %d bytes", MaxHeaderBytes)}

// malformed is a 400 for a request the proxy cannot read.
func malformed(format string, args ...any) error {
	return &requestError{status: 400, reason: fmt.Sprintf(format, args...)}
}

// readRequest reads one request header from br into r (reusing r's
// buffers). The grammar is RFC 9112's, read strictly: a request line of
// method, target and HTTP/1.0 or HTTP/1.1; header fields of token names,
// no whitespace before the colon and no control characters in values;
// no obs-fold continuation lines. Lines may end in CRLF or LF. An error
// before the first byte is the connection's (EOF, timeout); after it,
// a *requestError says what to answer.
func readRequest(br *bufio.Reader, r *request) error {
	head, err := readHead(br, r.line[:0])
	r.line = head[:0]
	if err != nil {
		return err
	}
	s := string(head) // one allocation; every field below is a substring
	line, rest, _ := strings.Cut(s, "\n")
	if err := r.parseRequestLine(strings.TrimSuffix(line, "\r")); err != nil {
		return err
	}
	r.fields = r.fields[:0]
	r.host, r.hasBody, r.close = "", false, r.minor == 0
	hosts := 0
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		f, err := parseField(line)
		if err != nil {
			return err
		}
		r.fields = append(r.fields, f)
		switch {
		case equalFold(f.name, "Host"):
			hosts++
			r.host = f.value
		case equalFold(f.name, "Content-Length"):
			if f.value != "0" {
				r.hasBody = true
			}
		case equalFold(f.name, "Transfer-Encoding"):
			r.hasBody = true
		case equalFold(f.name, "Connection"):
			if hasToken(f.value, "close") {
				r.close = true
			} else if r.minor == 0 && hasToken(f.value, "keep-alive") {
				r.close = false
			}
		}
	}
	if r.hasBody {
		// Its body is never read: nothing after it can be trusted to be
		// a request.
		r.close = true
	}
	if hosts > 1 {
		return malformed("more than one Host field")
	}
	if r.minor == 1 && hosts == 0 {
		return malformed("missing Host field (required by HTTP/1.1)")
	}
	return nil
}

// readHead reads lines from br into buf up to and including the empty line
// that ends a request header, skipping empty lines before the request line
// (RFC 9112 section 2.2).
func readHead(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return buf, tooLong
			}
			// EOF or a timeout: the client is gone, or never finished.
			return buf, err
		}
		if len(buf) == 0 && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			continue
		}
		if len(buf)+len(line) > MaxHeaderBytes {
			return buf, tooLong
		}
		buf = append(buf, line...)
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return buf, nil
		}
	}
}

// parseRequestLine reads method SP request-target SP HTTP-version.
func (r *request) parseRequestLine(line string) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || hasControlOrSpace(target) || hasControlOrSpace(version) {
		// Not quoted: the line holds the scrape's bearer token.
		return malformed("malformed request line")
	}
	switch version {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		return &requestError{status: 505, reason: fmt.Sprintf("HTTP version %.20q is not supported", version)}
	}
	r.method, r.target, r.url = method, target, nil
	if method == "CONNECT" {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		// Not the target itself: its query holds the bearer token.
		return malformed("malformed request target")
	}
	r.url = u
	return nil
}

// parseField splits one header line into its name and value.
func parseField(line string) (field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return field{}, malformed("obsolete line folding in the header")
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		// At most the leading name: the rest may be a credential.
		end := 0
		for end < len(line) && end < 40 && tokenBytes[line[end]] {
			end++
		}
		return field{}, malformed("malformed header line starting %q", line[:end])
	}
	value = trimOWS(value)
	if !allFieldValue(value) {
		return field{}, malformed("control character in header field %.100q", name)
	}
	return field{name: name, value: value}, nil
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	return s != "" && allToken(s)
}

// hasControlOrSpace reports whether s holds a space or an ASCII control
// character.
func hasControlOrSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// headerValue returns the value of the first field named name.
func headerValue(fields []field, name string) (string, bool) {
	for _, f := range fields {
		if equalFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// appendCanonical appends name in canonical form (as
// http.CanonicalHeaderKey would write it) without allocating.
func appendCanonical(b []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}
