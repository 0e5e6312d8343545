package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// nextResponse follows each response of readCases on the connection: once a
// body has been read, the reader must be at its first byte.
const nextResponse = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"

// readCase is a well-formed response and what readResponse and bodyReader
// make of it.
type readCase struct {
	name       string
	method     string // "" for GET
	in         string
	status     int
	statusLine string
	fields     []field
	length     int64
	chunked    bool
	close      bool
	reopen     bool   // bodyReader clears close (a HEAD response that would have been close-delimited)
	body       string // for close-delimited bodies, everything after the header: nextResponse is not appended
}

// closeDelimited reports whether c's body runs to the end of the input.
func (c readCase) closeDelimited() bool {
	return c.method != http.MethodHead && c.length < 0 && !c.chunked && bodyAllowed(c.status)
}

// wire returns c's input as the upstream sends it: followed by nextResponse
// unless the body runs to the end of the input.
func (c readCase) wire() string {
	if c.closeDelimited() {
		return c.in
	}
	return c.in + nextResponse
}

// readCases are the well-formed responses.
var readCases = []readCase{
	{
		name:       "content length",
		in:         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Type", "text/plain"}, {"Content-Length", "5"}},
		length:     5,
		body:       "hello",
	},
	{
		name:       "no reason phrase",
		in:         "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		status:     200,
		statusLine: "200",
		fields:     []field{{"Content-Length", "0"}},
		length:     0,
	},
	{
		name:       "empty reason phrase",
		in:         "HTTP/1.1 503 \r\ncontent-length: 2\r\n\r\nno",
		status:     503,
		statusLine: "503 ",
		fields:     []field{{"content-length", "2"}},
		length:     2,
		body:       "no",
	},
	{
		name:       "reason with tab and obs-text",
		in:         "HTTP/1.1 299 Caf\xc3\xa9\tok \r\nContent-Length: 0\r\n\r\n",
		status:     299,
		statusLine: "299 Caf\xc3\xa9\tok ",
		fields:     []field{{"Content-Length", "0"}},
		length:     0,
	},
	{
		name:       "bare LF line ends",
		in:         "HTTP/1.1 404 Not Found\nContent-Length: 3\nX-A: b\r\n\nabc",
		status:     404,
		statusLine: "404 Not Found",
		fields:     []field{{"Content-Length", "3"}, {"X-A", "b"}},
		length:     3,
		body:       "abc",
	},
	{
		name:       "values trimmed, names as sent, order and duplicates kept",
		in:         "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nX-Spaces: \t a  b \t\r\nX-Empty:\r\nX-Blank:  \r\nSet-Cookie:b=2\r\nX-Obs-Text: caf\xc3\xa9\r\nCONTENT-LENGTH: 1\r\n\r\nx",
		status:     200,
		statusLine: "200 OK",
		fields: []field{
			{"set-cookie", "a=1"}, {"X-Spaces", "a  b"}, {"X-Empty", ""}, {"X-Blank", ""},
			{"Set-Cookie", "b=2"}, {"X-Obs-Text", "caf\xc3\xa9"}, {"CONTENT-LENGTH", "1"},
		},
		length: 1,
		body:   "x",
	},
	{
		name:       "long lines",
		in:         "HTTP/1.1 200 " + strings.Repeat("long reason ", 10) + "\r\nX-Long: " + strings.Repeat("v", 5000) + "\r\nContent-Length: 3\r\n\r\nabc",
		status:     200,
		statusLine: "200 " + strings.Repeat("long reason ", 10),
		fields:     []field{{"X-Long", strings.Repeat("v", 5000)}, {"Content-Length", "3"}},
		length:     3,
		body:       "abc",
	},
	{
		name:       "token characters in names",
		in:         "HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: x\r\nContent-Length: 0\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"!#$%&'*+-.^_`|~09azAZ", "x"}, {"Content-Length", "0"}},
		length:     0,
	},
	{
		name:       "repeated and listed content length",
		in:         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3 , 3\r\n\r\nabc",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Length", "3"}, {"Content-Length", "3 , 3"}},
		length:     3,
		body:       "abc",
	},
	{
		name:       "content length with leading zeros",
		in:         "HTTP/1.1 200 OK\r\nContent-Length: 003\r\n\r\nabc",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Length", "003"}},
		length:     3,
		body:       "abc",
	},
	{
		name:       "chunked",
		in:         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\nA \r\n0123456789\r\n00;x\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Transfer-Encoding", "chunked"}},
		length:     -1,
		chunked:    true,
		body:       "hello world0123456789",
	},
	{
		name:       "chunked with trailers",
		in:         "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other:2\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"transfer-encoding", "Chunked"}, {"Trailer", "X-Sum"}},
		length:     -1,
		chunked:    true,
		body:       "abc",
	},
	{
		name:       "chunked, empty",
		in:         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Transfer-Encoding", "chunked"}},
		length:     -1,
		chunked:    true,
	},
	{
		name:       "chunked and content length",
		in:         "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Length", "100"}, {"Transfer-Encoding", "chunked"}},
		length:     -1,
		chunked:    true,
		close:      true,
		body:       "ab",
	},
	{
		name:       "connection close",
		in:         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "close"}, {"Content-Length", "2"}},
		length:     2,
		close:      true,
		body:       "ok",
	},
	{
		name:       "connection close in a list",
		in:         "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nconnection: Upgrade , CLOSE\r\nContent-Length: 2\r\n\r\nok",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "keep-alive"}, {"connection", "Upgrade , CLOSE"}, {"Content-Length", "2"}},
		length:     2,
		close:      true,
		body:       "ok",
	},
	{
		name:       "connection close-ish",
		in:         "HTTP/1.1 200 OK\r\nConnection: closed, x-close\r\nContent-Length: 2\r\n\r\nok",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "closed, x-close"}, {"Content-Length", "2"}},
		length:     2,
		body:       "ok",
	},
	{
		name:       "HTTP/1.0",
		in:         "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Length", "2"}},
		length:     2,
		close:      true,
		body:       "ok",
	},
	{
		name:       "HTTP/1.0 keep-alive",
		in:         "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "Keep-Alive"}, {"Content-Length", "2"}},
		length:     2,
		body:       "ok",
	},
	{
		name:       "HTTP/1.0 keep-alive without length",
		in:         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nall of it\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "keep-alive"}},
		length:     -1,
		close:      true,
		body:       "all of it\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	},
	{
		name:       "close-delimited",
		in:         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nup 1\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Type", "text/plain"}},
		length:     -1,
		close:      true,
		body:       "up 1\n",
	},
	{
		name:       "close-delimited, empty",
		in:         "HTTP/1.1 500 Oops\r\n\r\n",
		status:     500,
		statusLine: "500 Oops",
		length:     -1,
		close:      true,
	},
	{
		name:       "HEAD",
		method:     http.MethodHead,
		in:         "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Length", "1234"}},
		length:     1234,
	},
	{
		name:       "HEAD without length",
		method:     http.MethodHead,
		in:         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Content-Type", "text/plain"}},
		length:     -1,
		close:      true,
		reopen:     true,
	},
	{
		name:       "HEAD, chunked",
		method:     http.MethodHead,
		in:         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Transfer-Encoding", "chunked"}},
		length:     -1,
		chunked:    true,
	},
	{
		name:       "HEAD, connection close",
		method:     http.MethodHead,
		in:         "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
		status:     200,
		statusLine: "200 OK",
		fields:     []field{{"Connection", "close"}},
		length:     -1,
		close:      true,
	},
	{
		name:       "204 with a length",
		in:         "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		status:     204,
		statusLine: "204 No Content",
		fields:     []field{{"Content-Length", "5"}},
		length:     5,
	},
	{
		name:       "204 chunked",
		in:         "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
		status:     204,
		statusLine: "204 No Content",
		fields:     []field{{"Transfer-Encoding", "chunked"}},
		length:     -1,
		chunked:    true,
	},
	{
		name:       "304",
		in:         "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		status:     304,
		statusLine: "304 Not Modified",
		fields:     []field{{"ETag", `"x"`}},
		length:     -1,
	},
	{
		name:       "100 Continue",
		in:         "HTTP/1.1 100 Continue\r\n\r\n",
		status:     100,
		statusLine: "100 Continue",
		length:     -1,
	},
	{
		name:       "103 Early Hints",
		in:         "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
		status:     103,
		statusLine: "103 Early Hints",
		fields:     []field{{"Link", "</style.css>; rel=preload"}},
		length:     -1,
	},
	{
		name:       "101 Switching Protocols",
		in:         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		status:     101,
		statusLine: "101 Switching Protocols",
		fields:     []field{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}},
		length:     -1,
		close:      true,
	},
	{
		name:       "status 999",
		in:         "HTTP/1.1 999 Whatever\r\nContent-Length: 0\r\n\r\n",
		status:     999,
		statusLine: "999 Whatever",
		fields:     []field{{"Content-Length", "0"}},
		length:     0,
	},
}

// TestReadResponse reads each of readCases, then its body, then the next
// response from the same reader into the same response, with a reader
// buffer small enough to split every line and with a usual one.
func TestReadResponse(t *testing.T) {
	for _, c := range readCases {
		for _, size := range []int{16, 4096} {
			br := bufio.NewReaderSize(strings.NewReader(c.wire()), size)
			var r response
			if err := readResponse(br, &r); err != nil {
				t.Errorf("%s (buffer %d): %v", c.name, size, err)
				continue
			}
			if r.status != c.status || r.statusLine != c.statusLine || !slices.Equal(r.fields, c.fields) ||
				r.contentLength != c.length || r.chunked != c.chunked || r.close != c.close {
				t.Errorf("%s (buffer %d): got status %d %q, fields %q, length %d, chunked %t, close %t\nwant status %d %q, fields %q, length %d, chunked %t, close %t",
					c.name, size, r.status, r.statusLine, r.fields, r.contentLength, r.chunked, r.close,
					c.status, c.statusLine, c.fields, c.length, c.chunked, c.close)
				continue
			}
			method := cmpOr(c.method, http.MethodGet)
			body, err := io.ReadAll(r.bodyReader(br, method))
			if err != nil || string(body) != c.body {
				t.Errorf("%s (buffer %d): body %q, %v; want %q", c.name, size, body, err, c.body)
				continue
			}
			if want := c.close && !c.reopen; r.close != want {
				t.Errorf("%s (buffer %d): close %t after bodyReader, want %t", c.name, size, r.close, want)
			}
			if c.closeDelimited() {
				continue
			}
			if err := readResponse(br, &r); err != nil {
				t.Errorf("%s (buffer %d): next response: %v", c.name, size, err)
				continue
			}
			body, err = io.ReadAll(r.bodyReader(br, http.MethodGet))
			if err != nil || r.statusLine != "200 OK" || string(body) != "next" || br.Buffered() != 0 {
				t.Errorf("%s (buffer %d): next response %q, body %q, %v, %d bytes left", c.name, size, r.statusLine, body, err, br.Buffered())
			}
		}
	}
}

// cmpOr returns s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestReadResponsePipelined reads responses one after the other from one
// reader into one response, as a kept-alive connection does.
func TestReadResponsePipelined(t *testing.T) {
	var wire strings.Builder
	var want []readCase
	for _, c := range readCases {
		if !c.closeDelimited() {
			wire.WriteString(c.in)
			want = append(want, c)
		}
	}
	br := bufio.NewReaderSize(strings.NewReader(wire.String()), 64)
	var r response
	for _, c := range want {
		if err := readResponse(br, &r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, err := io.ReadAll(r.bodyReader(br, cmpOr(c.method, http.MethodGet)))
		if err != nil || r.statusLine != c.statusLine || !slices.Equal(r.fields, c.fields) || string(body) != c.body {
			t.Fatalf("%s: %q %q body %q, %v", c.name, r.statusLine, r.fields, body, err)
		}
	}
	if _, err := br.Peek(1); err != io.EOF {
		t.Errorf("input left over: %v", err)
	}
}

// headerErrorCases are malformed response headers and a part of the error
// readResponse returns for each.
var headerErrorCases = []struct {
	in, err string
}{
	{"", "unexpected EOF"},
	{"HTTP/1.1 200 OK", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nX: y", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nX: y\r\n\r", "unexpected EOF"},
	{"HTTP/2 200\r\n\r\n", `unsupported HTTP version in status line "HTTP/2 200"`},
	{"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"},
	{"HTTP/1.2 200 OK\r\n\r\n", "unsupported HTTP version"},
	{"HTTP/0.9 200 OK\r\n\r\n", "unsupported HTTP version"},
	{"HTTP/1.10 200 OK\r\n\r\n", "unsupported HTTP version"},
	{"http/1.1 200 OK\r\n\r\n", `malformed HTTP status line "http/1.1 200 OK"`},
	{"HTTP/1.1\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 \r\n\r\n", "malformed HTTP status line"},
	{"\r\nHTTP/1.1 200 OK\r\n\r\n", `malformed HTTP status line ""`},
	{"garbage\r\n\r\n", `malformed HTTP status line "garbage"`},
	{"HTTP/1.1 200OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1  200 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1\t200 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 200\tOK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 20 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 20\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 099 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 +99 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 1000 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 2x0 OK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 200 O\rK\r\n\r\n", `malformed HTTP status line "HTTP/1.1 200 O\rK"`},
	{"HTTP/1.1 200 OK\r\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 200 O\x00K\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 200 O\x7fK\r\n\r\n", "malformed HTTP status line"},
	{"HTTP/1.1 200 " + strings.Repeat("x", 1000) + "\x00\r\n\r\n", `malformed HTTP status line "HTTP/1.1 200 xxxxx`},
	{"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", `malformed MIME header line: obsolete line folding is not supported: " Folded: x"`},
	{"HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", "obsolete line folding"},
	{"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", `malformed MIME header line: invalid field name: "X : y"`},
	{"HTTP/1.1 200 OK\r\n X: y\r\n\r\n", "obsolete line folding"},
	{"HTTP/1.1 200 OK\r\n: y\r\n\r\n", "invalid field name"},
	{"HTTP/1.1 200 OK\r\nX(: y\r\n\r\n", "invalid field name"},
	{"HTTP/1.1 200 OK\r\nX\x00: y\r\n\r\n", "invalid field name"},
	{"HTTP/1.1 200 OK\r\nCaf\xc3\xa9: y\r\n\r\n", "invalid field name"},
	{"HTTP/1.1 200 OK\r\nX y\r\n\r\n", `malformed MIME header line: missing colon: "X y"`},
	{"HTTP/1.1 200 OK\r\n\r\r\n\r\n", "missing colon"},
	{"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", `malformed MIME header line: invalid byte in field value: "X: a\x00b"`},
	{"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "invalid byte in field value"},
	{"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n", "invalid byte in field value"},
	{"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", "invalid byte in field value"},
	{"HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", "invalid byte in field value"},
	{"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", `invalid Content-Length "abc"`},
	{"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", `invalid Content-Length ""`},
	{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", `conflicting Content-Length values "1" and "2"`},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 01\r\n\r\n", "conflicting Content-Length values"},
	{"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", `unsupported Transfer-Encoding "gzip"`},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "unsupported Transfer-Encoding"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "unsupported Transfer-Encoding"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "unsupported Transfer-Encoding: 2 fields"},
	{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "unexpected Transfer-Encoding in an HTTP/1.0 response"},
}

// TestReadResponseErrors checks the errors for malformed headers, and that
// they quote at most maxQuoted bytes of the input.
func TestReadResponseErrors(t *testing.T) {
	for _, c := range headerErrorCases {
		for _, size := range []int{16, 4096} {
			var r response
			err := readResponse(bufio.NewReaderSize(strings.NewReader(c.in), size), &r)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q (buffer %d): got error %v, want %q", c.in, size, err, c.err)
			} else if len(err.Error()) > 3*maxQuoted {
				t.Errorf("%q: error of %d bytes", c.in, len(err.Error()))
			}
		}
	}
}

// bodyErrorCases are broken bodies after a valid header and a part of the
// error reading them ends with.
var bodyErrorCases = []struct {
	in, err string
}{
	{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", "unexpected EOF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "line does not end in CRLF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", "no CRLF after chunk data"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "no CRLF after chunk data"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\nhello\r\n0\r\n\r\n", "CR inside a line"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", "CR inside a line"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", `invalid chunk size ""`},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n", `invalid chunk size "g"`},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\n", "invalid chunk size"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000000000000001\r\n", `chunk size "4000000000000001" too large`},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1", 5000) + "\r\n", "line too long"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n X: y\r\n\r\n", "malformed trailer line: obsolete line folding"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX y\r\n\r\n", "malformed trailer line: missing colon"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x00\r\n\r\n", "malformed trailer line: invalid byte"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", "line does not end in CRLF"},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", "line does not end in CRLF"},
}

// TestBodyErrors checks that broken bodies fail, the error sticking, and
// that a body cut short fails with io.ErrUnexpectedEOF.
func TestBodyErrors(t *testing.T) {
	for _, c := range bodyErrorCases {
		br := bufio.NewReaderSize(strings.NewReader(c.in), 4096)
		var r response
		if err := readResponse(br, &r); err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		body := r.bodyReader(br, http.MethodGet)
		_, err := io.ReadAll(body)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: got error %v, want %q", c.in, err, c.err)
			continue
		}
		if c.err == "unexpected EOF" && err != io.ErrUnexpectedEOF {
			t.Errorf("%q: got %#v, want io.ErrUnexpectedEOF", c.in, err)
		}
		if n, again := body.Read(make([]byte, 10)); n != 0 || again != err {
			t.Errorf("%q: read after the error: %d, %v", c.in, n, again)
		}
	}
}

// slowReader returns its input a few bytes per Read, blocking (failing the
// test) when asked for more after the point it may be read to.
type slowReader struct {
	t     *testing.T
	in    []byte
	step  int
	limit int // bytes that may be read
}

// Read returns up to step bytes.
func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.in) == 0 {
		return 0, io.EOF
	}
	if s.limit <= 0 {
		s.t.Fatal("read beyond the data available")
	}
	n := copy(p, s.in[:min(len(s.in), s.step, s.limit)])
	s.in = s.in[n:]
	s.limit -= n
	return n, nil
}

// TestChunkedDoesNotWait checks that a chunked body's reader returns the
// data it has rather than wait for the next chunk's header.
func TestChunkedDoesNotWait(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	first := "5\r\nhello\r\n"
	src := &slowReader{t: t, in: []byte(head + first + "5\r\nworld\r\n0\r\n\r\n"), step: 7, limit: len(head + first)}
	br := bufio.NewReaderSize(src, 16)
	var r response
	if err := readResponse(br, &r); err != nil {
		t.Fatal(err)
	}
	body := r.bodyReader(br, http.MethodGet)
	var got []byte
	p := make([]byte, 64)
	for len(got) < len("hello") {
		n, err := body.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[:n]...)
	}
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	src.limit = len(src.in)
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "world" {
		t.Fatalf("got %q, %v", rest, err)
	}
}

// typicalResponse is a metrics endpoint's answer as the router passes it
// on: a status line, six fields and a 250-byte body.
var typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Length: 250\r\n" +
	"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" +
	"Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n" +
	"X-Vcap-Request-Id: 5e1c7a8e-3f1b-4c2d-6a7b-9c0d1e2f3a4b\r\n" +
	"Cache-Control: no-store\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"\r\n" + strings.Repeat("metric_total 1\n", 16) + "# ten more\n"

// readTypical reads typicalResponse, header and body, from br (reset to src
// first) into r.
func readTypical(src *strings.Reader, br *bufio.Reader, r *response, buf []byte) error {
	src.Reset(typicalResponse)
	br.Reset(src)
	if err := readResponse(br, r); err != nil {
		return err
	}
	n, err := drain(r.bodyReader(br, http.MethodGet), buf)
	if err == nil && n != 250 {
		err = io.ErrShortBuffer
	}
	return err
}

// drain reads body to its end through buf and returns its length.
func drain(body io.Reader, buf []byte) (int, error) {
	total := 0
	for {
		n, err := body.Read(buf)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// TestReadResponseAllocs checks the allocations of a response read into a
// reused response: the header block's one string.
func TestReadResponseAllocs(t *testing.T) {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX: y\r\n\r\n"
	for _, in := range []string{typicalResponse, chunked} {
		src := strings.NewReader(in)
		br := bufio.NewReaderSize(src, 32<<10)
		buf := make([]byte, 32<<10)
		var r response
		allocs := testing.AllocsPerRun(100, func() {
			src.Reset(in)
			br.Reset(src)
			if err := readResponse(br, &r); err != nil {
				t.Fatal(err)
			}
			if _, err := drain(r.bodyReader(br, http.MethodGet), buf); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%v allocations per response", allocs)
		if allocs > 1 {
			t.Errorf("%d allocations per response, want 1:\n%s", int(allocs), in)
		}
	}
}

// BenchmarkReadResponse reads typicalResponse, header and body, with
// readResponse and, for comparison, with http.ReadResponse.
func BenchmarkReadResponse(b *testing.B) {
	b.Run("readResponse", func(b *testing.B) {
		src := strings.NewReader(typicalResponse)
		br := bufio.NewReaderSize(src, 32<<10)
		buf := make([]byte, 32<<10)
		var r response
		b.ReportAllocs()
		b.SetBytes(int64(len(typicalResponse)))
		for b.Loop() {
			if err := readTypical(src, br, &r, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http.ReadResponse", func(b *testing.B) {
		src := strings.NewReader(typicalResponse)
		br := bufio.NewReaderSize(src, 32<<10)
		buf := make([]byte, 32<<10)
		req := &http.Request{Method: http.MethodGet}
		b.ReportAllocs()
		b.SetBytes(int64(len(typicalResponse)))
		for b.Loop() {
			src.Reset(typicalResponse)
			br.Reset(src)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := drain(resp.Body, buf); err != nil || n != 250 {
				b.Fatal(n, err)
			}
			_ = resp.Body.Close()
		}
	})
}

// parsed is what readResponse and bodyReader make of an input.
type parsed struct {
	r       response
	err     error  // from readResponse
	body    []byte // read from the body reader
	bodyErr error
	rest    []byte // the input left after the body
}

// parse reads a response and its body from in through a reader buffer of
// the given size.
func parse(in []byte, method string, size int) parsed {
	var p parsed
	br := bufio.NewReaderSize(bytes.NewReader(in), size)
	if p.err = readResponse(br, &p.r); p.err != nil {
		return p
	}
	p.body, p.bodyErr = io.ReadAll(p.r.bodyReader(br, method))
	p.rest, _ = io.ReadAll(br)
	return p
}

// FuzzReadResponse compares readResponse and bodyReader with net/http's
// ReadResponse and its body for arbitrary input: whatever readResponse
// accepts net/http accepts too, with the same status, fields and body,
// except for the leniencies documented in response.go; whatever it
// rejects, net/http rejects too, except for the documented strictness.
func FuzzReadResponse(f *testing.F) {
	for _, c := range readCases {
		f.Add([]byte(c.wire()), c.method == http.MethodHead)
	}
	for _, c := range headerErrorCases {
		f.Add([]byte(c.in), false)
	}
	for _, c := range bodyErrorCases {
		f.Add([]byte(c.in), false)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		if len(in) > 4<<10 {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		ours := parse(in, method, 4096)
		checkInvariants(t, in, ours)
		checkSmallBuffer(t, in, ours, parse(in, method, 16))

		br := bufio.NewReader(bytes.NewReader(in))
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		switch {
		case ours.err != nil && err != nil:
			return
		case ours.err != nil:
			if !stricter(in, resp, ours.err) {
				t.Fatalf("readResponse rejects what net/http accepts: %v\ninput %q", ours.err, in)
			}
			return
		case err != nil:
			if !lenient(&ours.r, err) {
				t.Fatalf("readResponse accepts what net/http rejects (%v)\ninput %q", err, in)
			}
			return
		}
		compareHeader(t, in, &ours.r, resp, head)
		body, err := io.ReadAll(resp.Body)
		rest, _ := io.ReadAll(br)
		switch {
		case ours.bodyErr == nil && err == nil:
			if !bytes.Equal(ours.body, body) || !bytes.Equal(ours.rest, rest) {
				t.Fatalf("body %q then %q, net/http %q then %q\ninput %q", ours.body, ours.rest, body, rest, in)
			}
		case ours.bodyErr == nil:
			t.Fatalf("body read, net/http fails (%v)\ninput %q", err, in)
		case err == nil:
			if !stricterBody(ours.bodyErr) {
				t.Fatalf("body fails (%v), net/http reads it\ninput %q", ours.bodyErr, in)
			}
		}
	})
}

// fuzzSeeds are further inputs for FuzzReadResponse: regressions and
// corners of net/http.
var fuzzSeeds = []string{
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nA: b\r\n c\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nA B: c\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1   200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nA: b\r\n c\r\n\r\n",
	// net/http ends the trailer section at a bare LF when it sees a CRLF
	// CRLF coming.
	"HTTP/1.1 200 \ntrAnsfer-enCoding:Chunked\n\n0\r\n\n\r\n\r\n",
}

// checkInvariants checks what a response from readResponse always
// satisfies.
func checkInvariants(t *testing.T, in []byte, p parsed) {
	t.Helper()
	if p.err != nil {
		// At most two quotes of maxQuoted bytes, each escaped byte 4 long.
		if len(p.err.Error()) > 2*4*maxQuoted+100 {
			t.Fatalf("error of %d bytes: %v", len(p.err.Error()), p.err)
		}
		return
	}
	r := &p.r
	if r.status < 100 || r.status > 999 || strings.ContainsAny(r.statusLine, "\r\n\x00") ||
		r.contentLength < -1 || r.chunked && r.contentLength != -1 ||
		r.body.framing == framedByClose && !r.close {
		t.Fatalf("status %d %q, length %d, chunked %t, close %t, framing %d\ninput %q",
			r.status, r.statusLine, r.contentLength, r.chunked, r.close, r.body.framing, in)
	}
	for _, f := range r.fields {
		if f.name == "" || strings.ContainsAny(f.name, " \t\r\n:") || strings.ContainsAny(f.value, "\r\n\x00") ||
			f.value != strings.Trim(f.value, " \t") {
			t.Fatalf("field %q\ninput %q", f, in)
		}
	}
}

// checkSmallBuffer checks that a reader buffer too small for the input's
// lines changes nothing but the length of the chunked framing's lines.
func checkSmallBuffer(t *testing.T, in []byte, p, small parsed) {
	t.Helper()
	if (p.err == nil) != (small.err == nil) || p.err != nil && p.err.Error() != small.err.Error() {
		t.Fatalf("error %v, with a small buffer %v\ninput %q", p.err, small.err, in)
	}
	if p.err != nil || errors.Is(small.bodyErr, errChunkLineTooLong) {
		return
	}
	if p.r.status != small.r.status || p.r.statusLine != small.r.statusLine || !slices.Equal(p.r.fields, small.r.fields) ||
		p.r.close != small.r.close || !bytes.Equal(p.body, small.body) || !bytes.Equal(p.rest, small.rest) ||
		(p.bodyErr == nil) != (small.bodyErr == nil) {
		t.Fatalf("with a small buffer, %q %q %q %v, want %q %q %q %v\ninput %q",
			small.r.statusLine, small.r.fields, small.body, small.bodyErr, p.r.statusLine, p.r.fields, p.body, p.bodyErr, in)
	}
}

// stricter reports whether readResponse's err for in, which net/http
// accepts as resp, is one of its documented strictnesses.
func stricter(in []byte, resp *http.Response, err error) bool {
	status, fieldLines := splitHead(in)
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "malformed HTTP status line"), strings.HasPrefix(msg, "unsupported HTTP version"):
		_, code, _ := strings.Cut(status, " ")
		return resp.ProtoMajor != 1 || resp.ProtoMinor > 1 || resp.StatusCode < 100 ||
			strings.HasPrefix(code, " ") || hasCTL(status)
	case errors.Is(err, errFieldFolded):
		return true
	case errors.Is(err, errFieldName):
		for _, line := range fieldLines {
			if name, _, _ := strings.Cut(line, ":"); strings.Contains(name, " ") {
				return true
			}
		}
	case strings.Contains(msg, "Transfer-Encoding in an HTTP/1.0 response"):
		return resp.ProtoMajor == 1 && resp.ProtoMinor == 0
	}
	return false
}

// hasCTL reports whether s holds a control character other than HTAB.
func hasCTL(s string) bool {
	return strings.ContainsFunc(s, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f })
}

// splitHead returns the status line and the field lines of in, without
// their line ends.
func splitHead(in []byte) (status string, fields []string) {
	lines := strings.Split(string(in), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
		if i > 0 && lines[i] == "" {
			return lines[0], lines[1:i]
		}
	}
	return lines[0], lines[1:]
}

// lenient reports whether readResponse's accepting r, which net/http
// rejects with err, is its documented leniency: a Content-Length list.
// net/http also rejects a chunked response whose Trailer field names
// Content-Length, Transfer-Encoding or Trailer; the proxy ignores Trailer.
func lenient(r *response, err error) bool {
	if strings.Contains(err.Error(), "bad trailer key") {
		return true
	}
	for _, f := range r.fields {
		if equalFold(f.name, "Content-Length") && strings.Contains(f.value, ",") {
			return true
		}
	}
	return false
}

// stricterBody reports whether a body error is one of the documented
// strictnesses in the trailer section or the chunk size.
func stricterBody(err error) bool {
	return errors.Is(err, errFieldFolded) || errors.Is(err, errFieldName) ||
		strings.HasPrefix(err.Error(), "malformed trailer section") && errors.Is(err, errChunkLineEnd) ||
		strings.Contains(err.Error(), "too large")
}

// compareHeader compares r with net/http's resp for the same input, read
// as the answer to a HEAD request when head is set.
func compareHeader(t *testing.T, in []byte, r *response, resp *http.Response, head bool) {
	t.Helper()
	if r.status != resp.StatusCode || r.statusLine != resp.Status {
		t.Fatalf("status %d %q, net/http %d %q\ninput %q", r.status, r.statusLine, resp.StatusCode, resp.Status, in)
	}
	ours := http.Header{}
	hasLength := false
	for _, f := range r.fields {
		ours.Add(f.name, f.value)
		hasLength = hasLength || equalFold(f.name, "Content-Length")
	}
	framing := map[string]bool{"Transfer-Encoding": true, "Content-Length": true, "Connection": true, "Trailer": true}
	for k, v := range ours {
		if !framing[k] && !slices.Equal(v, resp.Header[k]) {
			t.Fatalf("%s: %q, net/http %q\ninput %q", k, v, resp.Header[k], in)
		}
	}
	for k, v := range resp.Header {
		if _, ok := ours[k]; !ok && !framing[k] &&
			!(k == "Cache-Control" && ours.Get("Pragma") == "no-cache") {
			t.Fatalf("%s: %q from net/http only\ninput %q", k, v, in)
		}
	}
	if r.chunked != slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		t.Fatalf("chunked %t, net/http %q\ninput %q", r.chunked, resp.TransferEncoding, in)
	}
	if !r.chunked && (head || bodyAllowed(r.status)) && r.contentLength != resp.ContentLength {
		t.Fatalf("length %d, net/http %d\ninput %q", r.contentLength, resp.ContentLength, in)
	}
	// r.close is as bodyReader left it.
	if r.close != resp.Close && !(r.close && (r.status == http.StatusSwitchingProtocols || r.chunked && hasLength)) {
		t.Fatalf("close %t, net/http %t\ninput %q", r.close, resp.Close, in)
	}
}
