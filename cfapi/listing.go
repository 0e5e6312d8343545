package cfapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strconv"
	"strings"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

const (
	// perPage is the CF API's largest page: listings cost requests per 5000
	// resources.
	perPage = 5000
	// maxPages stops a listing whose pagination never ends.
	maxPages = 1000
	// pageReadSize is how much of a page is read from the connection at
	// once, at most.
	pageReadSize = 64 << 10
)

// listAll reads every page of the listing at path, filtered by params
// (name, value pairs), and returns what keep makes of each resource it
// keeps, in the listing's order, with what the pages included (gathered
// once per guid). With an "include" param, every page must carry an
// "included" object.
//
// Pages are decoded as they stream in, one resource at a time into an R
// that keep turns into the small T kept (or drops): neither a page nor a
// decoded resource outlives that step, which is what bounds the memory of a
// listing of 50,000 apps.
//
// The answer is complete or an error wrapping ErrUnavailable: a page cut
// short or without its included resources, a next link to anything but
// the next page, a listing that lost resources while it was read. A
// listing that changes under it is read once more, then given up.
//
// go-cfclient's own pager and list methods are not used for this: its
// include methods panic on a page without "included", they decode whole
// pages into memory, and they follow next links to the end without
// checking that the pages add up to total_results, so that a listing that
// lost a resource meanwhile comes back short without an error.
func listAll[R, T any](ctx context.Context, c *Client, path string, keep func(*R) (T, bool), params ...string) ([]T, *included, error) {
	q := make([]string, 0, len(params)/2)
	include := false
	for i := 0; i+1 < len(params); i += 2 {
		// Commas stay as they are: they separate the values of a filter,
		// and escaping them would triple a guid filter's separators.
		q = append(q, params[i]+"="+strings.ReplaceAll(url.QueryEscape(params[i+1]), "%2C", ","))
		include = include || params[i] == "include"
	}
	pathAndQuery := path + "?" + strings.Join(q, "&")
	for try := 0; ; try++ {
		items, inc, err := listOnce(ctx, c, path, pathAndQuery, include, keep)
		if errors.Is(err, errListingChanged) && try == 0 {
			continue
		}
		return items, inc, err
	}
}

func listOnce[R, T any](ctx context.Context, c *Client, path, pathAndQuery string, include bool, keep func(*R) (T, bool)) ([]T, *included, error) {
	var (
		items []T
		inc   = newIncluded()
		read  = 0
		total = -1
	)
	use := func(r *R) {
		if item, ok := keep(r); ok {
			items = append(items, item)
		}
	}
	for page := 1; ; page++ {
		var p pageSummary
		err := c.getURL(ctx, c.listURL(pathAndQuery, page), path, func(body io.Reader) (err error) {
			// The decoder reads a few KB at a time, and the connection's
			// own buffer is 4 KB: a page of megabytes took a system call
			// per 4 KB.
			p, err = decodePage(json.NewDecoder(bufio.NewReaderSize(body, pageReadSize)), use, inc)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		if include && !p.included {
			return nil, nil, malformed(path, "page "+strconv.Itoa(page)+" has no included resources")
		}
		// Resources created meanwhile join the end of the order and skip
		// nothing; a removal shifts later resources back a place, so that
		// one would be missed.
		if p.pagination.TotalResults < total {
			return nil, nil, fmt.Errorf("%s: %w", path, errListingChanged)
		}
		total = p.pagination.TotalResults
		read += p.resources
		if p.pagination.Next.Href == "" {
			break
		}
		next, err := url.Parse(p.pagination.Next.Href)
		if err != nil || next.Query().Get("page") != strconv.Itoa(page+1) || page >= maxPages {
			return nil, nil, malformed(path, "page "+strconv.Itoa(page)+" has an unexpected next link")
		}
	}
	if read != total {
		return nil, nil, fmt.Errorf("%s: %w (%d of %d resources read)", path, errListingChanged, read, total)
	}
	return items, inc, nil
}

// listURL adds the paging parameters to a path and query.
func (c *Client) listURL(pathAndQuery string, page int) string {
	return c.api + pathAndQuery + "&per_page=" + strconv.Itoa(perPage) + "&page=" + strconv.Itoa(page)
}

// pageSummary is what a page of a listing says about the listing.
type pageSummary struct {
	pagination resource.Pagination
	resources  int
	included   bool
}

// decodePage reads one page of a listing, handing each resource to use as
// soon as it is decoded and gathering the included resources into inc.
func decodePage[R any](dec *json.Decoder, use func(*R), inc *included) (pageSummary, error) {
	var p pageSummary
	paginated := false
	page, err := eachField(dec, func(key string) (err error) {
		switch key {
		case "pagination":
			paginated = true
			return dec.Decode(&p.pagination)
		case "resources":
			p.resources, err = eachElement(dec, func(r *R) { use(r) })
			return err
		case "included":
			p.included, err = inc.decode(dec)
			return err
		default:
			var skip json.RawMessage
			return dec.Decode(&skip)
		}
	})
	if err == nil && !(page && paginated) {
		// An empty listing has its pagination too: without it, this is
		// no page of a listing, and taking it for an empty one would
		// drop every target.
		err = errors.New("not a page of a listing")
	}
	return p, err
}

// eachField calls field with each key of the JSON object dec is at; field
// reads the key's value. A null is no object: eachField reports whether
// there was one.
func eachField(dec *json.Decoder, field func(key string) error) (bool, error) {
	t, err := dec.Token()
	if err != nil || t == nil {
		return false, err
	}
	if t != json.Delim('{') {
		return false, fmt.Errorf("found %v where an object was expected", t)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return true, err
		}
		if err := field(t.(string)); err != nil { // object keys are strings
			return true, err
		}
	}
	return true, expect(dec, '}')
}

// eachElement decodes the JSON array dec is at one element at a time and
// hands each to use; it returns how many there were.
func eachElement[R any](dec *json.Decoder, use func(*R)) (int, error) {
	if err := expect(dec, '['); err != nil {
		return 0, err
	}
	n := 0
	for dec.More() {
		var r R
		if err := dec.Decode(&r); err != nil {
			return n, err
		}
		use(&r)
		n++
	}
	return n, expect(dec, ']')
}

func expect(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != want {
		return fmt.Errorf("found %v where %v was expected", t, want)
	}
	return nil
}

// included gathers the resources that answers included, once each: they
// repeat across the pages of a listing. Only what describes apps and
// bindings is kept.
type included struct {
	spaces  map[string]space
	orgs    map[string]string // guid → name
	domains map[string]domain
	// plans maps a service instance's guid to its plan's.
	plans map[string]string
}

type (
	space struct {
		name string
		org  string
	}
	domain struct {
		name     string
		internal bool
	}
)

func newIncluded() *included {
	return &included{
		spaces:  map[string]space{},
		orgs:    map[string]string{},
		domains: map[string]domain{},
		plans:   map[string]string{},
	}
}

func (inc *included) addSpace(s *resource.Space) {
	org := ""
	if s.Relationships != nil {
		org = guidOf(s.Relationships.Organization)
	}
	inc.spaces[s.GUID] = space{name: s.Name, org: org}
}

func (inc *included) addOrg(o *resource.Organization) { inc.orgs[o.GUID] = o.Name }

func (inc *included) addDomain(d *resource.Domain) {
	inc.domains[d.GUID] = domain{name: d.Name, internal: d.Internal}
}

func (inc *included) addServiceInstance(si *resource.ServiceInstance) {
	inc.plans[si.GUID] = guidOf(si.Relationships.ServicePlan)
}

// decode reads an "included" object, one resource at a time, and reports
// whether there was one.
func (inc *included) decode(dec *json.Decoder) (bool, error) {
	return eachField(dec, func(key string) (err error) {
		switch key {
		case "spaces":
			_, err = eachElement(dec, inc.addSpace)
		case "organizations":
			_, err = eachElement(dec, inc.addOrg)
		case "domains":
			_, err = eachElement(dec, inc.addDomain)
		case "service_instances":
			_, err = eachElement(dec, inc.addServiceInstance)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		return err
	})
}

// merge adds what other gathered.
func (inc *included) merge(other *included) {
	if other == nil {
		return
	}
	maps.Copy(inc.spaces, other.spaces)
	maps.Copy(inc.orgs, other.orgs)
	maps.Copy(inc.domains, other.domains)
	maps.Copy(inc.plans, other.plans)
}

// guidOf is the guid a to-one relationship names, "" for none.
func guidOf(r *resource.ToOneRelationship) string {
	if r == nil || r.Data == nil {
		return ""
	}
	return r.Data.GUID
}
