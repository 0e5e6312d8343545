package httpsd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Path is where the broker serves http_sd.
const Path = "/v1/targets"

// AgeHeader carries, on every answer with groups, the seconds since the
// view last read the bucket completely: it grows while the bucket fails.
const AgeHeader = "X-View-Age-Seconds"

// Credentials are the endpoint's basic-auth credentials (SD_USERNAME,
// SD_PASSWORD): its own, never the OSB API's.
type Credentials struct {
	Username string
	Password string
}

// Enabled reports whether both are set: without them the endpoint is off.
func (c Credentials) Enabled() bool {
	return c.Username != "" && c.Password != ""
}

// Handler answers GET /v1/targets from a View.
type Handler struct {
	view     *View
	enabled  bool
	user     [sha256.Size]byte
	password [sha256.Size]byte
	metrics  *requestMetrics
}

// NewHandler serves v behind basic auth by creds, compared in constant
// time; without credentials it answers 404, as if it were not there.
// Requests are counted by outcome and status code on reg, when set.
func NewHandler(v *View, creds Credentials, reg prometheus.Registerer) *Handler {
	return &Handler{
		view:     v,
		enabled:  creds.Enabled(),
		user:     sha256.Sum256([]byte(creds.Username)),
		password: sha256.Sum256([]byte(creds.Password)),
		metrics:  newRequestMetrics(reg),
	}
}

// Mount serves Path with sd and every other request with next, the OSB
// API, which keeps its own path checks.
func Mount(sd, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path {
			sd.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP answers the groups of the view as one JSON array, gzipped when
// the client accepts it, filtered by the org and space query parameters
// when given. Each answer is made once per change of the view: the one
// without filters when the view changes, a filtered one when it is first
// asked for.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enabled {
		h.fail(w, outcomeOff, "not found")
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="http_sd", charset="UTF-8"`)
		h.fail(w, outcomeUnauthorized, "basic auth with the http_sd credentials is required")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, outcomeMethodNotAllowed, "only GET and HEAD are allowed")
		return
	}
	f, err := parseFilters(r.URL.RawQuery)
	if err != nil {
		h.fail(w, outcomeBadRequest, err.Error())
		return
	}
	s, age, ready := h.view.latest()
	if !ready {
		h.fail(w, outcomeNotReady, "the targets have not been read from the bucket yet")
		return
	}
	outcome := outcomeAll
	if f != (filters{}) {
		outcome = outcomeFiltered
	}
	a := s.answer(f)
	body := a.body
	gzipped := acceptsGzip(r.Header.Values("Accept-Encoding"))
	if gzipped {
		body = a.gzipped
	}
	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Vary", "Accept-Encoding")
	if gzipped {
		header.Set("Content-Encoding", "gzip")
	}
	header.Set("Content-Length", strconv.Itoa(len(body)))
	header.Set(AgeHeader, strconv.FormatInt(int64(age/time.Second), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	h.metrics.observe(outcome)
}

// authorized compares hashes of the credentials, so that the comparison
// takes the same time whatever their lengths, and checks both whatever the
// first gave.
func (h *Handler) authorized(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(password))
	userOK := subtle.ConstantTimeCompare(u[:], h.user[:])
	passwordOK := subtle.ConstantTimeCompare(p[:], h.password[:])
	return ok && userOK&passwordOK == 1
}

func (h *Handler) fail(w http.ResponseWriter, outcome, description string) {
	body, _ := json.Marshal(map[string]string{"description": description})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(outcomeCodes[outcome])
	_, _ = w.Write(append(body, '\n'))
	h.metrics.observe(outcome)
}

// parseFilters reads the optional org and space parameters. Anything else
// is refused rather than ignored, so that a mistyped filter does not
// quietly serve every group.
func parseFilters(rawQuery string) (filters, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return filters{}, errors.New("the query string is malformed")
	}
	for name, values := range q {
		if name != "org" && name != "space" {
			return filters{}, fmt.Errorf("unknown parameter %.40q: only org and space filter the groups", name)
		}
		if len(values) != 1 || values[0] == "" {
			return filters{}, fmt.Errorf("%s must be given once, with a name", name)
		}
	}
	return filters{org: q.Get("org"), space: q.Get("space")}, nil
}

// acceptsGzip reads Accept-Encoding: gzip (or x-gzip), else *, with a
// q-value above 0.
func acceptsGzip(values []string) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			if name, value, ok := strings.Cut(params, "="); ok && strings.TrimSpace(name) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					q = f
				} else {
					q = 0
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				anyQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}
