// Package scrape is the scrape-parameter contract: the names target files
// carry as `__param_<name>` labels, which Prometheus turns into query
// parameters and paas-proxy turns into the headers the CF router and the
// app need. It depends on the standard library only, so that paas-proxy
// links nothing else. It also holds the form of the Cloud Foundry GUIDs the
// contract carries, which every object key and broker id must pass too.
package scrape

import (
	"fmt"
	"net/http"
	"net/url"
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

	// HeaderAppInstance is the header the CF router routes on.
	HeaderAppInstance = "X-CF-APP-INSTANCE"
	// HeaderAppInstanceCopy repeats HeaderAppInstance for route services
	// that drop the first.
	HeaderAppInstanceCopy = "XX-CF-APP-INSTANCE"
	// HeaderRouterError is the header in which the CF router explains a
	// routing failure (e.g. "unknown_route").
	HeaderRouterError = "X-Cf-Routererror"

	paramLabelPrefix = "__param_"
)

// Params are the scrape parameters of one app instance.
type Params struct {
	AppGUID string
	Index   int
}

// Instance is the "<app_guid>:<index>" form the CF router understands.
func (p Params) Instance() string {
	return p.AppGUID + ":" + strconv.Itoa(p.Index)
}

// Labels returns the `__param_*` labels that make Prometheus send p as query
// parameters.
func (p Params) Labels() map[string]string {
	return map[string]string{
		paramLabelPrefix + ParamAppGUID:          p.AppGUID,
		paramLabelPrefix + ParamAppInstanceIndex: strconv.Itoa(p.Index),
		paramLabelPrefix + ParamAppInstance:      p.Instance(),
	}
}

// Query returns the query parameters Prometheus derives from Labels.
func (p Params) Query() url.Values {
	return url.Values{
		ParamAppGUID:          {p.AppGUID},
		ParamAppInstance:      {p.Instance()},
		ParamAppInstanceIndex: {strconv.Itoa(p.Index)},
	}
}

// SetHeaders sets the headers the CF router and the app's metrics endpoint
// expect for p, replacing any values h already has for them.
func (p Params) SetHeaders(h http.Header) {
	instance := p.Instance()
	h.Set(HeaderAppInstance, instance)
	h.Set(HeaderAppInstanceCopy, instance)
	h.Set("Authorization", "Bearer "+p.AppGUID)
}

// Canonical forms of the scrape headers, as AppendHeader writes them.
var (
	canonicalAppInstance     = http.CanonicalHeaderKey(HeaderAppInstance)
	canonicalAppInstanceCopy = http.CanonicalHeaderKey(HeaderAppInstanceCopy)
)

// AppendHeader appends the header fields SetHeaders sets to b, in HTTP/1.1
// form ("Name: value" and CRLF each), for a proxy that writes its request
// header itself.
func (p Params) AppendHeader(b []byte) []byte {
	for _, name := range [...]string{canonicalAppInstance, canonicalAppInstanceCopy} {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, p.AppGUID...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(p.Index), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Authorization: Bearer "...)
	b = append(b, p.AppGUID...)
	return append(b, "\r\n"...)
}

// Parse reads the scrape parameters from a scrape URL's query.
// It returns ok=false and no error when none of them is present (a plain
// request to forward as it is), and an error when any is present but
// malformed or inconsistent with the others.
func Parse(q url.Values) (p Params, ok bool, err error) {
	guid, hasGUID := single(q, ParamAppGUID)
	inst, hasInst := single(q, ParamAppInstance)
	idx, hasIdx := single(q, ParamAppInstanceIndex)
	if !hasGUID && !hasInst && !hasIdx {
		return Params{}, false, nil
	}
	for _, name := range []string{ParamAppGUID, ParamAppInstance, ParamAppInstanceIndex} {
		if len(q[name]) > 1 {
			return Params{}, false, fmt.Errorf("query parameter %s is repeated", name)
		}
	}
	if hasInst {
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
		guid, idx, hasGUID, hasIdx = g, i, true, true
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
		return Params{}, false, fmt.Errorf("query parameter %s: %w", ParamAppInstanceIndex, err)
	}
	return Params{AppGUID: guid, Index: n}, true, nil
}

// Strip removes the scrape parameters from q, leaving any others.
func Strip(q url.Values) {
	q.Del(ParamAppGUID)
	q.Del(ParamAppInstance)
	q.Del(ParamAppInstanceIndex)
}

func single(q url.Values, name string) (string, bool) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
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
