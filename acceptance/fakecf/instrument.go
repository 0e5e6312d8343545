package fakecf

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// maxLogged bounds the request log kept for RequestLog.
const maxLogged = 10000

type counter struct {
	mu     sync.Mutex
	total  int
	byPath map[string]int
	log    []string
}

func newCounter() *counter {
	return &counter{byPath: map[string]int{}}
}

func (c *counter) add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.byPath[r.URL.Path]++
	if len(c.log) < maxLogged {
		c.log = append(c.log, r.Method+" "+r.URL.RequestURI())
	}
}

// Requests is the number of requests received (token and root included)
// since the start or the last ResetCounts.
func (s *Server) Requests() int {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	return s.counts.total
}

// RequestsTo is the number of requests received for exactly this URL path
// (no query), e.g. "/v3/apps".
func (s *Server) RequestsTo(path string) int {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	return s.counts.byPath[path]
}

// APIRequests is the number of requests to /v3 paths.
func (s *Server) APIRequests() int {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	n := 0
	for p, c := range s.counts.byPath {
		if strings.HasPrefix(p, "/v3/") {
			n += c
		}
	}
	return n
}

// TokenRequests is the number of requests to the token endpoint.
func (s *Server) TokenRequests() int {
	return s.RequestsTo("/oauth/token")
}

// RequestLog lists the requests received, oldest first, as "METHOD
// /path?query" (at most the first 10,000).
func (s *Server) RequestLog() []string {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	return append([]string(nil), s.counts.log...)
}

// ResetCounts zeroes the request counters and the request log.
func (s *Server) ResetCounts() {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	s.counts.total = 0
	s.counts.byPath = map[string]int{}
	s.counts.log = nil
}

// Fault makes matching requests fail instead of being answered.
type Fault struct {
	// Path is the URL path prefix the fault applies to, e.g. "/v3/apps".
	// Empty means every /v3 request.
	Path string
	// Times is how many matching requests fail; 0 means all until
	// ClearFaults.
	Times int
	// Status is the status answered (default 500), with a CF error body.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Hang holds the request without answering until the client gives up or
	// the server closes.
	Hang bool
	// TruncatePage, when positive, makes the fault apply only to page
	// TruncatePage of a listing, which is answered 200 with the JSON body cut
	// in half.
	TruncatePage int
}

type faultSet struct {
	mu     sync.Mutex
	faults []*Fault
}

// InjectFault adds a fault. Faults are tried in the order they were added;
// the first that matches a request applies.
func (s *Server) InjectFault(f Fault) {
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = append(s.faults.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

func (fs *faultSet) take(r *http.Request) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if !f.matches(r) {
			continue
		}
		taken := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				fs.faults = append(fs.faults[:i:i], fs.faults[i+1:]...)
			}
		}
		return taken, true
	}
	return Fault{}, false
}

func (f *Fault) matches(r *http.Request) bool {
	if f.Path == "" {
		if !strings.HasPrefix(r.URL.Path, "/v3/") {
			return false
		}
	} else if !strings.HasPrefix(r.URL.Path, f.Path) {
		return false
	}
	if f.TruncatePage > 0 {
		page := 1
		if p := r.URL.Query().Get("page"); p != "" {
			page, _ = strconv.Atoi(p)
		}
		return page == f.TruncatePage
	}
	return true
}

// truncatingWriter buffers an answer and sends only the first half of its
// body, as a connection cut mid-answer would.
type truncatingWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (t *truncatingWriter) WriteHeader(status int) { t.status = status }

func (t *truncatingWriter) Write(p []byte) (int, error) { return t.buf.Write(p) }

func (t *truncatingWriter) flush() {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	t.ResponseWriter.Header().Del("Content-Length")
	t.ResponseWriter.WriteHeader(t.status)
	body := t.buf.Bytes()
	_, _ = t.ResponseWriter.Write(body[:len(body)/2])
}

// apiError is one entry of a CF v3 error answer.
type apiError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, map[string][]apiError{"errors": {e}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, body)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func notFound(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotFound, apiError{Code: 10010, Title: "CF-ResourceNotFound", Detail: what + " not found"})
}

func badQuery(w http.ResponseWriter, detail string) {
	writeError(w, http.StatusBadRequest, apiError{Code: 10005, Title: "CF-BadQueryParameter", Detail: "The query parameter is invalid: " + detail})
}
