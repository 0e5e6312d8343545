package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// This file is the upstream client's HTTP/1.1 response parser: the framing
// of RFC 9112 with the acceptance of net/http's ReadResponse, without its
// allocations (a map and a string per header field, a textproto.Reader, a
// body per response). A response header costs one allocation: the header
// block turned into a single string that every field is a slice of.
//
// Where it departs from net/http, it is stricter:
//   - the status line is exactly HTTP/1.0 or HTTP/1.1, one space, a status
//     code from 100 to 999, and optionally one space and a reason without
//     control characters other than HTAB (net/http takes any version
//     HTTP/x.y, several spaces, codes below 100 and any reason bytes);
//   - field lines that begin with a space or tab (obs-fold, RFC 9112
//     section 5.2) are rejected rather than joined to the previous line,
//     and field names are tokens without spaces (net/http keeps a name
//     with spaces, uncanonicalised);
//   - Transfer-Encoding in an HTTP/1.0 response is an error (net/http
//     ignores it; RFC 9112 section 6.1 calls the framing faulty);
//   - chunk sizes over 1<<62 are rejected (as are, like net/http, sizes of
//     more than 16 hex digits), and the trailer section, like the chunk
//     lines, must end its lines in CRLF and may not fold them;
//   - a 101 response and a response with both a Content-Length and
//     Transfer-Encoding: chunked close the connection.
//
// It is more lenient in one way: a Content-Length field may be a list of
// identical values ("42, 42"), as RFC 9110 section 8.6 allows; net/http
// accepts identical values only in separate fields. Values are compared as
// sent, so "5" and "05" conflict, as in net/http.
//
// Like net/http, it takes only "chunked" as a transfer coding: a response
// with any other (gzip, or a list ending in chunked) is an error, since
// the proxy could neither undo the coding nor tell its client about it.

// field is one header field as it appeared on the wire: name as sent (not
// canonicalised), value with surrounding whitespace trimmed.
type field struct{ name, value string }

// response is an upstream response header.
type response struct {
	status        int     // status code, 100..999
	statusLine    string  // status code and reason as sent, e.g. "200 OK" or "404 Not Found" or "200" (no reason); never contains CR/LF
	fields        []field // every header field in order (hop-by-hop ones included; the caller filters)
	contentLength int64   // from Content-Length; -1 when absent or when the body is chunked
	chunked       bool    // Transfer-Encoding: chunked is the final coding (here the only one: see above)
	close         bool    // the connection cannot carry another exchange after this response (Connection: close, HTTP/1.0 without keep-alive, a close-delimited body, ...)

	// headerClose is close without the close-delimited body: what close
	// is when the response has no body after all (a HEAD response).
	headerClose bool
	// head holds the header block as read (the empty line that ends it
	// left out), reused from one response to the next.
	head []byte
	// body is the reader bodyReader returns, kept here so that reading a
	// body allocates nothing.
	body responseBody
}

// Reasons a field line is malformed, wrapped in the errors of readResponse
// and of a chunked body's trailer section.
var (
	errFieldFolded = errors.New("obsolete line folding is not supported")
	errFieldColon  = errors.New("missing colon")
	errFieldName   = errors.New("invalid field name")
	errFieldValue  = errors.New("invalid byte in field value")
)

// Errors in chunked framing.
var (
	errChunkLineEnd     = errors.New("malformed chunked encoding: line does not end in CRLF")
	errChunkLineCR      = errors.New("malformed chunked encoding: CR inside a line")
	errChunkLineTooLong = errors.New("malformed chunked encoding: line too long")
	errChunkDataEnd     = errors.New("malformed chunked encoding: no CRLF after chunk data")
)

// maxChunkSize is the largest chunk size a chunked body may declare.
const maxChunkSize = 1 << 62

// maxQuoted is how many bytes of the input an error message quotes at most.
const maxQuoted = 100

// readResponse reads one response header from br. It fills *r (reusing
// r.fields' backing array: r.fields = r.fields[:0] first) and leaves br at
// the first byte of the body. It returns io.ErrUnexpectedEOF when the input
// ends before the header does, a read error as it is, and a descriptive
// error for anything malformed. A 1xx response is returned like any other:
// the caller skips it and reads the next.
func readResponse(br *bufio.Reader, r *response) error {
	r.reset()
	if _, err := r.readLine(br); err != nil {
		return err
	}
	status := trimEOL(r.head)
	http10, err := r.parseStatusLine(status)
	if err != nil {
		return err
	}
	for {
		start, err := r.readLine(br)
		if err != nil {
			return err
		}
		line := trimEOL(r.head[start:])
		if len(line) == 0 {
			r.head = r.head[:start]
			break
		}
		if err := checkFieldLine(line); err != nil {
			return fmt.Errorf("malformed MIME header line: %w", err)
		}
	}
	r.split(len(status))
	return r.frame(http10)
}

// reset empties r for the next response, keeping its buffers.
func (r *response) reset() {
	r.status = 0
	r.statusLine = ""
	clear(r.fields) // let the previous header block be collected
	r.fields = r.fields[:0]
	r.contentLength = -1
	r.chunked = false
	r.close = false
	r.headerClose = false
	r.head = r.head[:0]
}

// release lets go of the last header read, and of the header buffer when
// its capacity is over max: for a response kept between exchanges.
func (r *response) release(limit int) {
	r.reset()
	if cap(r.head) > limit {
		r.head = nil
	}
}

// readLine appends the next line from br, line end included, to r.head and
// returns where it starts. Lines longer than br's buffer are read whole.
func (r *response) readLine(br *bufio.Reader) (start int, err error) {
	start = len(r.head)
	for {
		b, err := br.ReadSlice('\n')
		r.head = append(r.head, b...)
		switch err {
		case nil:
			return start, nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return 0, io.ErrUnexpectedEOF
		default:
			return 0, err
		}
	}
}

// trimEOL returns line, which ends in LF, without its CRLF or LF.
func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// parseStatusLine checks the status line (without its line end), sets
// r.status and reports whether the response is HTTP/1.0.
func (r *response) parseStatusLine(line []byte) (http10 bool, err error) {
	version, code, _ := bytes.Cut(line, []byte(" "))
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		http10 = true
	default:
		if v, ok := bytes.CutPrefix(version, []byte("HTTP/")); ok && len(code) > 0 && isVersion(v) {
			return false, fmt.Errorf("unsupported HTTP version in status line %s", quoted(line))
		}
		return false, fmt.Errorf("malformed HTTP status line %s", quoted(line))
	}
	// 3DIGIT [ SP reason-phrase ]
	if len(code) < 3 || code[0] < '1' || code[0] > '9' || !isDigit(code[1]) || !isDigit(code[2]) ||
		len(code) > 3 && (code[3] != ' ' || !allFieldValue(code[4:])) {
		return false, fmt.Errorf("malformed HTTP status line %s", quoted(line))
	}
	r.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return http10, nil
}

// isVersion reports whether v looks like an HTTP version number: digits
// and dots, starting with a digit.
func isVersion(v []byte) bool {
	if len(v) == 0 || !isDigit(v[0]) {
		return false
	}
	for _, c := range v {
		if !isDigit(c) && c != '.' {
			return false
		}
	}
	return true
}

// checkFieldLine checks one field line (without its line end): a token, a
// colon and a value of visible characters, spaces, tabs and obs-text.
func checkFieldLine(line []byte) error {
	if line[0] == ' ' || line[0] == '\t' {
		return fmt.Errorf("%w: %s", errFieldFolded, quoted(line))
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return fmt.Errorf("%w: %s", errFieldColon, quoted(line))
	}
	if colon == 0 || !allToken(line[:colon]) {
		return fmt.Errorf("%w: %s", errFieldName, quoted(line))
	}
	if !allFieldValue(line[colon+1:]) {
		return fmt.Errorf("%w: %s", errFieldValue, quoted(line))
	}
	return nil
}

// split turns r.head, the status line and field lines already checked,
// into r.statusLine and r.fields: one string, sliced. statusEnd is the
// length of the status line without its line end.
func (r *response) split(statusEnd int) {
	s := string(r.head)
	r.statusLine = s[len("HTTP/1.x "):statusEnd]
	rest := s[strings.IndexByte(s, '\n')+1:]
	for rest != "" {
		eol := strings.IndexByte(rest, '\n')
		line := strings.TrimSuffix(rest[:eol], "\r")
		rest = rest[eol+1:]
		colon := strings.IndexByte(line, ':')
		r.fields = append(r.fields, field{name: line[:colon], value: trimOWS(line[colon+1:])})
	}
}

// frame works out the body's framing and the connection's fate from the
// Content-Length, Transfer-Encoding and Connection fields.
func (r *response) frame(http10 bool) error {
	var (
		length           string // the Content-Length value, as sent
		hasLength        bool
		coding           string // the Transfer-Encoding value
		codings          int    // Transfer-Encoding fields
		closing, keeping bool   // Connection: close, Connection: keep-alive
	)
	for _, f := range r.fields {
		switch {
		case equalFold(f.name, "Content-Length"):
			var err error
			if length, err = sameLength(length, hasLength, f.value); err != nil {
				return err
			}
			hasLength = true
		case equalFold(f.name, "Transfer-Encoding"):
			coding = f.value
			codings++
		case equalFold(f.name, "Connection"):
			closing = closing || hasToken(f.value, "close")
			keeping = keeping || hasToken(f.value, "keep-alive")
		}
	}
	if hasLength {
		n, ok := parseLength(length)
		if !ok {
			return fmt.Errorf("invalid Content-Length %s", quoted(length))
		}
		r.contentLength = n
	}
	if codings > 0 {
		switch {
		case http10:
			return errors.New("unexpected Transfer-Encoding in an HTTP/1.0 response")
		case codings > 1:
			return fmt.Errorf("unsupported Transfer-Encoding: %d fields", codings)
		case !equalFold(coding, "chunked"):
			return fmt.Errorf("unsupported Transfer-Encoding %s", quoted(coding))
		}
		r.chunked = true
		r.contentLength = -1
	}
	r.headerClose = closing || http10 && !keeping ||
		// A length and a coding both: a response smuggling attempt, or a
		// broken upstream. The coding wins; the connection goes.
		r.chunked && hasLength ||
		// The connection is no longer HTTP.
		r.status == http.StatusSwitchingProtocols
	closeDelimited := !r.chunked && !hasLength && bodyAllowed(r.status)
	r.close = r.headerClose || closeDelimited
	return nil
}

// sameLength checks one Content-Length field value, a list of one or more
// decimal numbers, and returns the number (as sent). Every number must be
// the same as the others and as seen, the number of the fields before when
// have is set.
func sameLength(seen string, have bool, value string) (string, error) {
	for {
		elem, rest, more := strings.Cut(value, ",")
		elem = trimOWS(elem)
		if _, ok := parseLength(elem); !ok {
			return "", fmt.Errorf("invalid Content-Length %s", quoted(value))
		}
		if have && elem != seen {
			return "", fmt.Errorf("conflicting Content-Length values %s and %s", quoted(seen), quoted(elem))
		}
		seen, have = elem, true
		if !more {
			return seen, nil
		}
		value = rest
	}
}

// parseLength parses a Content-Length number: decimal digits, no sign,
// at most 1<<63-1.
func parseLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) || n > (1<<63-1-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v holds token, ASCII
// case-insensitively.
func hasToken(v, token string) bool {
	for {
		elem, rest, more := strings.Cut(v, ",")
		if equalFold(trimOWS(elem), token) {
			return true
		}
		if !more {
			return false
		}
		v = rest
	}
}

// bodyAllowed reports whether a response with the given status may have a
// body (RFC 9110 sections 15.2, 15.3.5 and 15.4.5).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// bodyReader returns the response body of r for a request with the given
// method ("GET" or "HEAD"): it yields the body bytes with the framing
// removed and returns io.EOF only once the whole body, for chunked bodies
// the last chunk and any trailer section, has been consumed from br, so
// that the connection is ready for the next response; a body cut short
// returns io.ErrUnexpectedEOF (or the underlying error). HEAD responses,
// 1xx, 204 and 304 have no body (the reader is at EOF at once). A body
// that is neither chunked nor has a Content-Length is read until EOF, and
// the response has close=true.
//
// The reader lives in r: it is valid until the next readResponse into r,
// and bodyReader allocates nothing. Errors stick: once Read has failed it
// fails again. When the response turns out to have no body (a HEAD
// response), bodyReader clears r.close if only a close-delimited body had
// set it.
func (r *response) bodyReader(br *bufio.Reader, method string) io.Reader {
	b := &r.body
	*b = responseBody{br: br}
	switch {
	case method == http.MethodHead || !bodyAllowed(r.status):
		r.close = r.headerClose
		b.err = io.EOF
	case r.chunked:
		b.framing = framedByChunks
		b.step = chunkSize
	case r.contentLength == 0:
		b.err = io.EOF
	case r.contentLength > 0:
		b.framing = framedByLength
		b.left = r.contentLength
	default:
		b.framing = framedByClose
	}
	return b
}

// bodyFraming is how a body's end is found.
type bodyFraming int

// The ways a body ends.
const (
	framedByLength bodyFraming = iota // after Content-Length bytes
	framedByChunks                    // after the last chunk and the trailer section
	framedByClose                     // when the upstream closes the connection
)

// chunkStep is where a chunked body's reader is in the framing.
type chunkStep int

// The steps of a chunked body.
const (
	chunkSize    chunkStep = iota // before a chunk-size line
	chunkData                     // in a chunk's data
	chunkDataEnd                  // before the CRLF that ends a chunk's data
	chunkTrailer                  // before a trailer line or the final empty line
)

// responseBody reads a response body from the connection's reader.
type responseBody struct {
	br      *bufio.Reader
	framing bodyFraming
	step    chunkStep // for framedByChunks
	left    int64     // bytes left in the body (framedByLength) or the chunk (chunkData)
	err     error     // what every further Read returns: io.EOF once the body is read
}

// Read reads body bytes into p.
func (b *responseBody) Read(p []byte) (n int, err error) {
	if b.err != nil {
		return 0, b.err
	}
	switch b.framing {
	case framedByLength:
		n, err = b.readLength(p)
	case framedByChunks:
		n, err = b.readChunked(p)
	default:
		n, err = b.br.Read(p)
	}
	if !errors.Is(err, errWouldBlock) {
		// An event loop's socket with nothing to read yet (see
		// sockConn) ends nothing: a later Read may have data.
		b.err = err
	}
	return n, err
}

// readLength reads from a body of known length.
func (b *responseBody) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunked reads from a chunked body. Once it has data for p, it reads
// on only as far as the buffered input goes, so as not to hold data back
// while waiting for the upstream.
func (b *responseBody) readChunked(p []byte) (n int, err error) {
	for {
		switch b.step {
		case chunkData:
			if len(p) == 0 || n > 0 && b.br.Buffered() == 0 {
				return n, nil
			}
			m, err := b.br.Read(p[:min(int64(len(p)), b.left)])
			n += m
			p = p[m:]
			b.left -= int64(m)
			if b.left == 0 {
				b.step = chunkDataEnd
			}
			if err == io.EOF {
				return n, io.ErrUnexpectedEOF
			}
			if err != nil || m == 0 {
				return n, err
			}
		case chunkDataEnd:
			if n > 0 && b.br.Buffered() < 2 {
				return n, nil
			}
			if err := b.readDataEnd(); err != nil {
				return n, err
			}
			b.step = chunkSize
		case chunkSize:
			if wait, err := b.awaitLine(n); wait || err != nil {
				return n, err
			}
			size, err := b.readChunkSize()
			if err != nil {
				return n, err
			}
			b.left = size
			b.step = chunkData
			if size == 0 {
				b.step = chunkTrailer
			}
		case chunkTrailer:
			if wait, err := b.awaitLine(n); wait || err != nil {
				return n, err
			}
			line, err := readChunkLine(b.br)
			if err != nil {
				if err != io.ErrUnexpectedEOF {
					err = fmt.Errorf("malformed trailer section: %w", err)
				}
				return n, err
			}
			if len(line) == 0 {
				return n, io.EOF
			}
			if err := checkFieldLine(line); err != nil {
				return n, fmt.Errorf("malformed trailer line: %w", err)
			}
		}
	}
}

// awaitLine makes sure the framing line readChunked reads next is
// buffered whole. With n bytes of data read already, it does not wait
// for one: wait tells readChunked to return them first.
func (b *responseBody) awaitLine(n int) (wait bool, err error) {
	if lineBuffered(b.br) {
		return false, nil
	}
	if n > 0 {
		return true, nil
	}
	return false, fillLine(b.br)
}

// readDataEnd reads the CRLF after a chunk's data.
func (b *responseBody) readDataEnd() error {
	crlf, err := b.br.Peek(2)
	if len(crlf) == 2 && crlf[0] == '\r' && crlf[1] == '\n' {
		_, _ = b.br.Discard(2)
		return nil
	}
	switch {
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	}
	return errChunkDataEnd
}

// readChunkSize reads a chunk-size line: hex digits, then optionally
// spaces or a chunk extension, which is ignored.
func (b *responseBody) readChunkSize() (int64, error) {
	line, err := readChunkLine(b.br)
	if err != nil {
		return 0, err
	}
	// Like net/http: "1a ", "1a;ext" and "1a;ext " but not "1a ;ext".
	size, _, _ := bytes.Cut(bytes.TrimRight(line, " \t"), []byte(";"))
	if len(size) == 0 || len(size) > 16 {
		return 0, fmt.Errorf("malformed chunked encoding: invalid chunk size %s", quoted(line))
	}
	var n uint64
	for _, c := range size {
		d := unhex(c)
		if d < 0 {
			return 0, fmt.Errorf("malformed chunked encoding: invalid chunk size %s", quoted(line))
		}
		n = n<<4 | uint64(d)
	}
	if n > maxChunkSize {
		return 0, fmt.Errorf("malformed chunked encoding: chunk size %s too large", quoted(size))
	}
	return int64(n), nil
}

// readChunkLine reads a line of a chunked body's framing (a chunk-size
// line, a trailer line or the final empty line), which must end in CRLF
// and fit in br's buffer, and returns it without the CRLF. The line is
// valid until the next read from br.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch err {
	case nil:
	case bufio.ErrBufferFull:
		return nil, errChunkLineTooLong
	case io.EOF:
		return nil, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, errChunkLineEnd
	}
	line = line[:n-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, errChunkLineCR
	}
	return line, nil
}

// fillLine reads into br until it holds a whole line or is full. It reads
// without consuming: a line cut short by errWouldBlock (an event loop's
// socket with nothing more yet) is read again whole later. The end of the
// input within a line is io.ErrUnexpectedEOF.
func fillLine(br *bufio.Reader) error {
	for !lineBuffered(br) && br.Buffered() < br.Size() {
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// lineBuffered reports whether br holds a whole line.
func lineBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// unhex returns the value of the hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isDigit reports whether c is a decimal digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// tokenBytes marks the bytes of a token (RFC 9110 section 5.6.2, tchar).
var tokenBytes = byteSet("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

// fieldValueBytes marks the bytes allowed in a field value or a reason
// phrase (RFC 9110 section 5.5): visible characters, SP, HTAB and obs-text.
var fieldValueBytes = func() (set [256]bool) {
	for c := range set {
		set[c] = c == '\t' || c >= ' ' && c != 0x7f
	}
	return set
}()

// byteSet returns the set of the bytes of s.
func byteSet(s string) (set [256]bool) {
	for i := 0; i < len(s); i++ {
		set[s[i]] = true
	}
	return set
}

// allToken reports whether every byte of b is a tchar.
func allToken[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if !tokenBytes[b[i]] {
			return false
		}
	}
	return true
}

// allFieldValue reports whether every byte of b may be in a field value.
func allFieldValue[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if !fieldValueBytes[b[i]] {
			return false
		}
	}
	return true
}

// trimOWS returns s without leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold reports whether s equals the ASCII string t, ASCII
// case-insensitively.
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// quoted quotes s for an error message, cut to maxQuoted bytes.
func quoted[T ~string | ~[]byte](s T) string {
	if len(s) > maxQuoted {
		return strconv.Quote(string(s[:maxQuoted])) + "..."
	}
	return strconv.Quote(string(s))
}
