// Package scrape is the scrape-parameter contract: the names target files
// carry as `__param_<name>` labels, which Prometheus turns into query
// parameters and paas-proxy turns into the headers the CF router and the
// app need. It depends on the standard library only, so that paas-proxy
// links nothing else. It also holds the form of the Cloud Foundry GUIDs the
// contract carries, which every object key and broker id must pass too.
package scrape

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The scrape contract. Target files carry these names as `__param_<name>`
// labels; Prometheus turns each label into a query parameter of the scrape
// URL; paas-proxy reads them back and turns them into the headers the CF
// router and the app need. Both sides use only the definitions below.
const (
	// ParamAppGUID carries the app guid; the proxy sends it as a bearer token.
	ParamAppGUID = "cf_app_guid"
	// ParamAppInstance carries "<app_guid>:<index>"; the proxy sends it as
	// X-CF-APP-INSTANCE so the router picks that instance.
	ParamAppInstance = "cf_app_instance"
	// ParamAppInstanceIndex carries the instance index alone.
	ParamAppInstanceIndex = "cf_app_instance_index"
	// ParamProcessInstance carries "<process_guid>:<index>" for an app
	// whose web processes are addressed one by one (during a rolling or
	// canary deployment an app has several, each numbering its instances
	// from 0). The proxy then sends X-CF-PROCESS-INSTANCE instead of
	// X-CF-APP-INSTANCE.
	ParamProcessInstance = "cf_process_instance"

	// HeaderAppInstance is the header the CF router routes on.
	HeaderAppInstance = "X-CF-APP-INSTANCE"
	// HeaderAppInstanceCopy repeats HeaderAppInstance for route services
	// that drop the first.
	HeaderAppInstanceCopy = "XX-CF-APP-INSTANCE"
	// HeaderProcessInstance is the header a CF router (routing-release
	// 0.332.0 or later) routes on to reach one instance of one process.
	// The router reads it only when HeaderAppInstance is absent.
	HeaderProcessInstance = "X-CF-PROCESS-INSTANCE"
	// HeaderProcessInstanceCopy repeats HeaderProcessInstance for route
	// services that drop the first.
	HeaderProcessInstanceCopy = "XX-CF-PROCESS-INSTANCE"
	// HeaderRouterError is the header in which the CF router explains a
	// routing failure (e.g. "unknown_route").
	HeaderRouterError = "X-Cf-Routererror"

	paramLabelPrefix = "__param_"
)

// paramNames are the scrape parameters, in the order their problems are
// reported.
var paramNames = [...]string{ParamAppGUID, ParamAppInstance, ParamAppInstanceIndex, ParamProcessInstance}

// Params are the scrape parameters of one app instance.
type Params struct {
	AppGUID string
	Index   int
	// ProcessGUID, when set, names the web process whose instance Index
	// is: the scrape then addresses that process's instance rather than
	// the app's instance Index, whichever process that is.
	ProcessGUID string
}

// Instance is the "<app_guid>:<index>" form the CF router understands.
func (p Params) Instance() string {
	return p.AppGUID + ":" + strconv.Itoa(p.Index)
}

// ProcessInstance is the "<process_guid>:<index>" form the CF router
// understands; "" when p names no process.
func (p Params) ProcessInstance() string {
	if p.ProcessGUID == "" {
		return ""
	}
	return p.ProcessGUID + ":" + strconv.Itoa(p.Index)
}

// Labels returns the `__param_*` labels that make Prometheus send p as query
// parameters.
func (p Params) Labels() map[string]string {
	labels := make(map[string]string, len(paramNames))
	for name, values := range p.Query() {
		labels[paramLabelPrefix+name] = values[0]
	}
	return labels
}

// Query returns the query parameters Prometheus derives from Labels.
func (p Params) Query() url.Values {
	q := url.Values{
		ParamAppGUID:          {p.AppGUID},
		ParamAppInstance:      {p.Instance()},
		ParamAppInstanceIndex: {strconv.Itoa(p.Index)},
	}
	if p.ProcessGUID != "" {
		q[ParamProcessInstance] = []string{p.ProcessInstance()}
	}
	return q
}

// Header is one request header field.
type Header struct{ Name, Value string }

// Headers returns the headers the CF router and the app's metrics endpoint
// expect for p: the instance the router routes on, its copy, and the bearer
// token. A process instance is sent without the app instance header, which
// the router would read instead.
func (p Params) Headers() [3]Header {
	name, copyName, instance := HeaderAppInstance, HeaderAppInstanceCopy, p.Instance()
	if p.ProcessGUID != "" {
		name, copyName, instance = HeaderProcessInstance, HeaderProcessInstanceCopy, p.ProcessInstance()
	}
	return [3]Header{{name, instance}, {copyName, instance}, {"Authorization", "Bearer " + p.AppGUID}}
}

// SetHeaders sets the Headers of p on h, replacing any values h already has
// for them.
func (p Params) SetHeaders(h http.Header) {
	for _, f := range p.Headers() {
		h.Set(f.Name, f.Value)
	}
}

// Parse reads the scrape parameters from a scrape URL's query.
// It returns ok=false and no error when none of them is present (a plain
// request to forward as it is), and an error when any is present but
// malformed or inconsistent with the others.
func Parse(q url.Values) (p Params, ok bool, err error) {
	var v values
	for i, name := range paramNames {
		for _, x := range q[name] {
			v.add(i, x)
		}
	}
	return v.parse()
}

// ParseQuery reads the scrape parameters of a scrape URL's raw query, as
// Parse does, and returns the rest of the query: the other fields as they
// were sent, in their order and encoding, for the app. Raw spaces or
// control characters, escapes of control characters, malformed escapes and
// semicolons are errors; none of them can reach a request line, a header
// or a log.
func ParseQuery(rawQuery string) (p Params, ok bool, rest string, err error) {
	var v values
	var kept strings.Builder
	for raw := rawQuery; raw != ""; {
		var field string
		field, raw, _ = strings.Cut(raw, "&")
		if field == "" {
			continue
		}
		for i := 0; i < len(field); i++ {
			if c := field[i]; c <= ' ' || c == 0x7f || c == ';' {
				return Params{}, false, "", errors.New("control character, space or semicolon in the query")
			}
		}
		rawKey, rawValue, _ := strings.Cut(field, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return Params{}, false, "", fmt.Errorf("malformed query: %w", err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			// Only the bad escape is quoted: the value may be a token.
			return Params{}, false, "", fmt.Errorf("malformed query parameter %.64q: %w", key, err)
		}
		if hasControl(key) || hasControl(value) {
			return Params{}, false, "", fmt.Errorf("control character in query parameter %.64q", key)
		}
		if i := slices.Index(paramNames[:], key); i >= 0 {
			v.add(i, value)
			continue
		}
		if kept.Len() > 0 {
			kept.WriteByte('&')
		}
		kept.WriteString(field)
	}
	if p, ok, err = v.parse(); err != nil {
		return Params{}, false, "", err
	}
	return p, ok, kept.String(), nil
}

// values holds the first value of each of paramNames in a query, and how
// many it has.
type values [len(paramNames)]struct {
	first string
	n     int
}

func (v *values) add(i int, value string) {
	if v[i].n == 0 {
		v[i].first = value
	}
	v[i].n++
}

func (v *values) get(name string) (string, bool) {
	i := slices.Index(paramNames[:], name)
	return v[i].first, v[i].n > 0
}

func (v *values) parse() (p Params, ok bool, err error) {
	found := false
	for i, name := range paramNames {
		if v[i].n > 1 {
			return Params{}, false, fmt.Errorf("query parameter %s is repeated", name)
		}
		found = found || v[i].n > 0
	}
	if !found {
		return Params{}, false, nil
	}
	guid, hasGUID := v.get(ParamAppGUID)
	idx, hasIdx := v.get(ParamAppInstanceIndex)
	idxParam := ParamAppInstanceIndex // where idx comes from, for errors
	if inst, ok := v.get(ParamAppInstance); ok {
		g, i, found := strings.Cut(inst, ":")
		if !found {
			return Params{}, false, fmt.Errorf("query parameter %s must be <app_guid>:<index>", ParamAppInstance)
		}
		if hasGUID && g != guid {
			return Params{}, false, fmt.Errorf("query parameters %s and %s name different apps", ParamAppGUID, ParamAppInstance)
		}
		if hasIdx && i != idx {
			return Params{}, false, fmt.Errorf("query parameters %s and %s name different instances", ParamAppInstanceIndex, ParamAppInstance)
		}
		if !hasIdx {
			idxParam = ParamAppInstance
		}
		guid, idx, hasGUID, hasIdx = g, i, true, true
	}
	var process string
	if inst, ok := v.get(ParamProcessInstance); ok {
		g, i, found := strings.Cut(inst, ":")
		if !found {
			return Params{}, false, fmt.Errorf("query parameter %s must be <process_guid>:<index>", ParamProcessInstance)
		}
		if hasIdx && i != idx {
			return Params{}, false, fmt.Errorf("query parameters %s and %s name different instances", ParamAppInstanceIndex, ParamProcessInstance)
		}
		if !ValidGUID(g) {
			return Params{}, false, fmt.Errorf("query parameter %s: %w", ParamProcessInstance, ErrInvalidGUID)
		}
		if !hasIdx {
			idxParam = ParamProcessInstance
		}
		process, idx, hasIdx = g, i, true
	}
	if !hasGUID {
		return Params{}, false, fmt.Errorf("query parameter %s is missing", ParamAppGUID)
	}
	if !hasIdx {
		return Params{}, false, fmt.Errorf("query parameter %s is missing", ParamAppInstanceIndex)
	}
	if !ValidGUID(guid) {
		// Not quoted: the value is the app's bearer token, and the error
		// ends up in the proxy's log.
		return Params{}, false, fmt.Errorf("query parameter %s: %w", ParamAppGUID, ErrInvalidGUID)
	}
	n, err := parseIndex(idx)
	if err != nil {
		return Params{}, false, fmt.Errorf("query parameter %s: %w", idxParam, err)
	}
	return Params{AppGUID: guid, Index: n, ProcessGUID: process}, true, nil
}

// Strip removes the scrape parameters from q, leaving any others.
func Strip(q url.Values) {
	for _, name := range paramNames {
		q.Del(name)
	}
}

// hasControl reports whether s holds an ASCII control character (CR, LF,
// NUL, DEL, ...).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// maxIndex bounds instance indexes well above any CF quota, so that a
// parameter can never be used to send an absurd header.
const maxIndex = 1_000_000

// parseIndex accepts only the canonical decimal form the writer produces
// (no sign, no leading zero), so that the header the proxy sends is exactly
// the instance named in the target file.
func parseIndex(s string) (int, error) {
	if s == "" || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%.16q is not an instance index", s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%.16q is not an instance index", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxIndex {
		return 0, fmt.Errorf("%.16q is not an instance index", s)
	}
	return n, nil
}
