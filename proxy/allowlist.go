package proxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// AllowList is the set of hosts the proxy may reach (ALLOWED_DOMAINS). A
// domain name allows itself and every name under it, on a dot boundary:
// "example.com" allows "a.example.com" but not "badexample.com". A name
// with a single label ("localhost") allows only itself, so that an entry can
// never open a whole top-level domain. An IP literal allows only itself.
type AllowList struct {
	domains []string // lower case, no leading or trailing dot
	exact   []string // single-label names and IP literals
}

// ErrEmptyAllowList is returned by ParseAllowList when no entry is given:
// without an allow-list the proxy would be an open proxy.
var ErrEmptyAllowList = errors.New("at least one allowed domain is required")

// ParseAllowList reads ALLOWED_DOMAINS entries. Entries are case-insensitive
// and may carry a leading or trailing dot. It returns one error naming every
// entry that is not a domain name or an IP literal.
func ParseAllowList(entries []string) (AllowList, error) {
	var a AllowList
	var bad []string
	for _, e := range entries {
		name := strings.ToLower(strings.Trim(strings.TrimSpace(e), "."))
		switch {
		case name == "":
			continue
		case net.ParseIP(name) != nil:
			a.exact = append(a.exact, net.ParseIP(name).String())
		case !validHostname(name):
			bad = append(bad, fmt.Sprintf("%q", e))
		case !strings.Contains(name, "."):
			a.exact = append(a.exact, name)
		default:
			a.domains = append(a.domains, name)
		}
	}
	if len(bad) > 0 {
		return AllowList{}, fmt.Errorf("not a domain name or IP address (write example.com to allow it and every name under it): %s", strings.Join(bad, ", "))
	}
	if len(a.domains) == 0 && len(a.exact) == 0 {
		return AllowList{}, ErrEmptyAllowList
	}
	return a, nil
}

// Allows reports whether the host part of hostport (a URL's host, which may
// carry a port) is on the list.
func (a AllowList) Allows(hostport string) bool {
	host := hostOnly(hostport)
	if mayBeIP(host) {
		if ip := net.ParseIP(host); ip != nil {
			return slices.Contains(a.exact, ip.String())
		}
	}
	return validHostname(host) && (slices.Contains(a.exact, host) || slices.ContainsFunc(a.domains, func(d string) bool {
		return host == d || strings.HasSuffix(host, d) && host[len(host)-len(d)-1] == '.'
	}))
}

// String lists the entries, for logs.
func (a AllowList) String() string {
	return strings.Join(append(append([]string{}, a.domains...), a.exact...), ",")
}

// hostOnly returns the host part of a URL host, lower case, without a port,
// IPv6 brackets or trailing dot.
func hostOnly(hostport string) string {
	host := hostport
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return ""
		}
		host = host[1:end]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// mayBeIP reports whether host could be an IP literal, which ends in a
// digit or holds a colon: it spares most host names a failed parse.
func mayBeIP(host string) bool {
	return host != "" && (host[len(host)-1] >= '0' && host[len(host)-1] <= '9' || strings.Contains(host, ":"))
}

// validHostname accepts lower-case LDH names with dots; underscores are
// accepted because some platforms use them in route hosts.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
			continue
		}
		label := s[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}
