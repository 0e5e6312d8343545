package fakecf

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
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
	times   []timeFilter
	orderBy string // "created_at" (default) or "updated_at"
	desc    bool
}

// timeFilter is one created_ats or updated_ats filter. Cloud Controller
// compares whole-second timestamps with times it stores to the microsecond:
// gt and lte take in the whole second named, equality any time within it.
type timeFilter struct {
	updated bool
	op      string // "", "lt", "lte", "gt" or "gte"
	at      []time.Time
}

func (f timeFilter) match(created, updated time.Time) bool {
	t := created
	if f.updated {
		t = updated
	}
	switch f.op {
	case "lt":
		return t.Before(f.at[0])
	case "lte":
		return t.Before(f.at[0].Add(time.Second))
	case "gt":
		return !t.Before(f.at[0].Add(time.Second))
	case "gte":
		return !t.Before(f.at[0])
	}
	for _, at := range f.at {
		if !t.Before(at) && t.Before(at.Add(time.Second)) {
			return true
		}
	}
	return false
}

// matchTime reports whether a resource passes every time filter.
func (q *query) matchTime(created, updated time.Time) bool {
	for _, f := range q.times {
		if !f.match(created, updated) {
			return false
		}
	}
	return true
}

// timestampLayout is the only timestamp form Cloud Controller accepts in
// filters.
const timestampLayout = "2006-01-02T15:04:05Z"

// parseTimes parses the value of a created_ats or updated_ats filter.
func parseTimes(name, op, value string) (timeFilter, string) {
	label := strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "_", " ")
	f := timeFilter{updated: name == "updated_ats", op: op}
	if op != "" && !slices.Contains([]string{"lt", "lte", "gt", "gte"}, op) {
		return f, label + " Invalid relational operator: '" + op + "'"
	}
	parts := splitList(value)
	if op != "" && len(parts) > 1 {
		return f, label + " only accepts one value when using a relational operator"
	}
	for _, v := range parts {
		t, err := time.Parse(timestampLayout, v)
		if err != nil || t.Format(timestampLayout) != v {
			return f, label + " has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"
		}
		f.at = append(f.at, t)
	}
	if len(f.at) == 0 {
		return f, label + " relational operator and timestamp must be specified"
	}
	return f, ""
}

// parseQuery validates r's query against the filters and includes an
// endpoint accepts (and with timed, the created_ats and updated_ats filters
// and order_by), answering 400 as Cloud Controller does when it is invalid.
func parseQuery(w http.ResponseWriter, r *http.Request, filters, includes []string, timed bool) (*query, bool) {
	values := r.URL.Query()
	q := &query{filters: map[string]map[string]bool{}, include: map[string]bool{}, page: 1, perPage: defaultPerPage, values: values, orderBy: "created_at"}
	valid := append([]string{"page", "per_page"}, filters...)
	if len(includes) > 0 {
		valid = append(valid, "include")
	}
	if timed {
		valid = append(valid, "order_by", "created_ats", "updated_ats")
	}
	var unknown []string
	for name := range values {
		field, op, bracket := strings.Cut(name, "[")
		if bracket && timed && (field == "created_ats" || field == "updated_ats") && strings.HasSuffix(op, "]") {
			f, problem := parseTimes(field, strings.TrimSuffix(op, "]"), values.Get(name))
			if problem != "" {
				badQuery(w, problem)
				return nil, false
			}
			q.times = append(q.times, f)
			continue
		}
		if !slices.Contains(valid, name) {
			unknown = append(unknown, "'"+name+"'")
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		badQuery(w, "Unknown query parameter(s): "+strings.Join(unknown, ", ")+". Valid parameters are: '"+strings.Join(valid, "', '")+"'")
		return nil, false
	}
	for _, name := range []string{"created_ats", "updated_ats"} {
		if _, ok := values[name]; ok && timed {
			f, problem := parseTimes(name, "", values.Get(name))
			if problem != "" {
				badQuery(w, problem)
				return nil, false
			}
			q.times = append(q.times, f)
		}
	}
	if v, ok := values["order_by"]; ok && timed {
		q.orderBy, q.desc = strings.TrimPrefix(v[0], "-"), strings.HasPrefix(v[0], "-")
		if q.orderBy != "created_at" && q.orderBy != "updated_at" {
			badQuery(w, "Order by can only be: 'created_at', 'updated_at'")
			return nil, false
		}
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
	items    []R // in order of creation
	keep     func(q *query, r R) bool
	raw      func(r R) []byte
	included func(q *query, page []R) []includedKind
	// times, when set, gives a resource's created_at and updated_at: the
	// endpoint then takes created_ats, updated_ats and order_by.
	times func(r R) (created, updated time.Time)
}

// order returns the items in the order the query asks for.
func (spec listSpec[R]) order(q *query) []R {
	if spec.times == nil || (q.orderBy == "created_at" && !q.desc) {
		return spec.items
	}
	items := slices.Clone(spec.items)
	if q.orderBy == "updated_at" {
		slices.SortStableFunc(items, func(a, b R) int {
			_, ua := spec.times(a)
			_, ub := spec.times(b)
			return ua.Compare(ub)
		})
	}
	if q.desc {
		slices.Reverse(items)
	}
	return items
}

// keeps applies the endpoint's filters and the time filters.
func (spec listSpec[R]) keeps(q *query, item R) bool {
	if !spec.keep(q, item) {
		return false
	}
	if len(q.times) == 0 {
		return true
	}
	return q.matchTime(spec.times(item))
}

// serveList answers a list request: filter, paginate, render with the
// included resources of the page.
func serveList[R any](s *Server, w http.ResponseWriter, r *http.Request, spec listSpec[R]) {
	q, ok := parseQuery(w, r, spec.filters, spec.includes, spec.times != nil)
	if !ok {
		return
	}
	matched := make([]R, 0, min(len(spec.items), q.perPage))
	total := 0
	first := (q.page - 1) * q.perPage
	for _, item := range spec.order(q) {
		if !spec.keeps(q, item) {
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
	q, ok := parseQuery(w, r, nil, includes, false)
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
