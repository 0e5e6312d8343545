package fakecf

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	defaultPerPage = 50
	maxPerPage     = 5000
)

// query is a parsed, validated list or show query.
type query struct {
	filters map[string]map[string]bool
	include map[string]bool
	page    int
	perPage int
	values  url.Values
}

// parseQuery validates r's query against the filters and includes an
// endpoint accepts, answering 400 as Cloud Controller does when it is
// invalid.
func parseQuery(w http.ResponseWriter, r *http.Request, filters, includes []string) (*query, bool) {
	values := r.URL.Query()
	q := &query{filters: map[string]map[string]bool{}, include: map[string]bool{}, page: 1, perPage: defaultPerPage, values: values}
	valid := append([]string{"page", "per_page"}, filters...)
	if len(includes) > 0 {
		valid = append(valid, "include")
	}
	var unknown []string
	for name := range values {
		if !slices.Contains(valid, name) {
			unknown = append(unknown, "'"+name+"'")
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		badQuery(w, "Unknown query parameter(s): "+strings.Join(unknown, ", ")+". Valid parameters are: '"+strings.Join(valid, "', '")+"'")
		return nil, false
	}
	if v := values.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			badQuery(w, "Page must be greater than 0")
			return nil, false
		}
		q.page = n
	}
	if v := values.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPerPage {
			badQuery(w, "Per page must be between 1 and 5000")
			return nil, false
		}
		q.perPage = n
	}
	for _, inc := range splitList(values.Get("include")) {
		if !slices.Contains(includes, inc) {
			badQuery(w, "Invalid included resource: '"+inc+"'. Valid included resources are: '"+strings.Join(includes, "', '")+"'")
			return nil, false
		}
		q.include[inc] = true
		if before, _, ok := strings.Cut(inc, "."); ok {
			q.include[before] = true
		}
	}
	for _, name := range filters {
		if _, ok := values[name]; ok {
			set := map[string]bool{}
			for _, v := range splitList(values.Get(name)) {
				set[v] = true
			}
			q.filters[name] = set
		}
	}
	return q, true
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// match reports whether value passes filter name: true when the filter is
// absent, else when value is one of its comma-separated values.
func (q *query) match(name, value string) bool {
	set, ok := q.filters[name]
	return !ok || set[value]
}

// matchAny is match for a resource with several values (a route's apps).
func (q *query) matchAny(name string, values []string) bool {
	set, ok := q.filters[name]
	if !ok {
		return true
	}
	for _, v := range values {
		if set[v] {
			return true
		}
	}
	return false
}

// includedKind is one key of an answer's "included" object.
type includedKind struct {
	name string
	raws [][]byte
}

// collector gathers included resources without repeats, in order of first
// appearance.
type collector struct {
	seen map[string]bool
	raws [][]byte
}

func (c *collector) add(guid string, raw []byte) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if raw == nil || c.seen[guid] {
		return
	}
	c.seen[guid] = true
	c.raws = append(c.raws, raw)
}

func writeArray(buf *bytes.Buffer, raws [][]byte) {
	buf.WriteByte('[')
	for i, raw := range raws {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
}

func writeIncluded(buf *bytes.Buffer, kinds []includedKind) {
	buf.WriteString(`"included":{`)
	for i, k := range kinds {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Quote(k.name))
		buf.WriteByte(':')
		writeArray(buf, k.raws)
	}
	buf.WriteByte('}')
}

// listSpec describes one list endpoint.
type listSpec[R any] struct {
	filters  []string
	includes []string
	items    []R
	keep     func(q *query, r R) bool
	raw      func(r R) []byte
	included func(q *query, page []R) []includedKind
}

// serveList answers a list request: filter, paginate, render with the
// included resources of the page.
func serveList[R any](s *Server, w http.ResponseWriter, r *http.Request, spec listSpec[R]) {
	q, ok := parseQuery(w, r, spec.filters, spec.includes)
	if !ok {
		return
	}
	matched := make([]R, 0, min(len(spec.items), q.perPage))
	total := 0
	first := (q.page - 1) * q.perPage
	for _, item := range spec.items {
		if !spec.keep(q, item) {
			continue
		}
		if total >= first && total < first+q.perPage {
			matched = append(matched, item)
		}
		total++
	}
	totalPages := max((total+q.perPage-1)/q.perPage, 1)

	raws := make([][]byte, len(matched))
	size := 1024
	for i, item := range matched {
		raws[i] = spec.raw(item)
		size += len(raws[i]) + 1
	}
	var included []includedKind
	if len(q.include) > 0 && spec.included != nil {
		included = spec.included(q, matched)
		for _, k := range included {
			for _, raw := range k.raws {
				size += len(raw) + 1
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteString(`{"pagination":{"total_results":`)
	buf.WriteString(strconv.Itoa(total))
	buf.WriteString(`,"total_pages":`)
	buf.WriteString(strconv.Itoa(totalPages))
	buf.WriteString(`,"first":`)
	s.writePageLink(&buf, r, q, 1)
	buf.WriteString(`,"last":`)
	s.writePageLink(&buf, r, q, totalPages)
	buf.WriteString(`,"next":`)
	if q.page < totalPages {
		s.writePageLink(&buf, r, q, q.page+1)
	} else {
		buf.WriteString("null")
	}
	buf.WriteString(`,"previous":`)
	if q.page > 1 {
		s.writePageLink(&buf, r, q, q.page-1)
	} else {
		buf.WriteString("null")
	}
	buf.WriteString(`},"resources":`)
	writeArray(&buf, raws)
	if len(q.include) > 0 && spec.included != nil {
		buf.WriteByte(',')
		writeIncluded(&buf, included)
	}
	buf.WriteByte('}')
	writeRaw(w, http.StatusOK, buf.Bytes())
}

func (s *Server) writePageLink(buf *bytes.Buffer, r *http.Request, q *query, page int) {
	v := url.Values{}
	for k, vs := range q.values {
		v[k] = vs
	}
	v.Set("page", strconv.Itoa(page))
	v.Set("per_page", strconv.Itoa(q.perPage))
	buf.WriteString(`{"href":`)
	buf.WriteString(strconv.Quote(s.URL() + r.URL.Path + "?" + v.Encode()))
	buf.WriteByte('}')
}

// serveOne answers a show request for one resource, with its included
// resources when asked.
func serveOne(w http.ResponseWriter, r *http.Request, raw []byte, includes []string, included func(q *query) []includedKind) {
	q, ok := parseQuery(w, r, nil, includes)
	if !ok {
		return
	}
	if len(q.include) == 0 || included == nil {
		writeRaw(w, http.StatusOK, raw)
		return
	}
	var buf bytes.Buffer
	buf.Write(raw[:len(raw)-1])
	buf.WriteByte(',')
	writeIncluded(&buf, included(q))
	buf.WriteByte('}')
	writeRaw(w, http.StatusOK, buf.Bytes())
}
