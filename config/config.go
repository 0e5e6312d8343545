// Package config reads the programs' configuration the way Cloud Foundry
// hands it over: environment variables, falling back to the credentials of
// user-provided services in VCAP_SERVICES (same key names; the environment
// wins). Problems are collected, so that a program refuses to start with one
// message that names every one of them.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Env reads configuration values and collects the problems found on the way.
type Env struct {
	lookup   func(string) (string, bool)
	vcap     map[string]string
	problems []string
}

// FromEnvironment reads the process environment.
func FromEnvironment() *Env {
	return New(os.LookupEnv)
}

// New reads configuration through lookup (os.LookupEnv in production, a map
// in tests). VCAP_SERVICES, when set, is parsed at once; a malformed one is a
// problem reported by Err.
func New(lookup func(string) (string, bool)) *Env {
	e := &Env{lookup: lookup}
	if raw, ok := lookup("VCAP_SERVICES"); ok && strings.TrimSpace(raw) != "" {
		vcap, err := ParseVCAPServices([]byte(raw))
		if err != nil {
			e.Problem("VCAP_SERVICES: %v", err)
		}
		e.vcap = vcap
	}
	return e
}

// Lookup returns the value of name from the environment, else from
// VCAP_SERVICES credentials. Values are trimmed of surrounding white space.
func (e *Env) Lookup(name string) (string, bool) {
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	if v, ok := e.vcap[name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	return "", false
}

// String returns name's value, or def when it is not set.
func (e *Env) String(name, def string) string {
	if v, ok := e.Lookup(name); ok {
		return v
	}
	return def
}

// Required returns name's value and records a problem when it is not set.
func (e *Env) Required(name string) string {
	v, ok := e.Lookup(name)
	if !ok {
		e.Problem("%s is required", name)
	}
	return v
}

// Int returns name's value as an integer in [min, max], or def when unset.
func (e *Env) Int(name string, def, min, max int) int {
	v, ok := e.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Problem("%s must be a whole number, got %q", name, v)
		return def
	}
	if n < min || n > max {
		e.Problem("%s must be between %d and %d, got %d", name, min, max, n)
		return def
	}
	return n
}

// Port returns PORT (1..65535), or def when unset. def 0 means "no port".
func (e *Env) Port(def int) int {
	return e.Int("PORT", def, 1, 65535)
}

// URL returns name's value checked to be an absolute http(s) URL, without a
// trailing slash. An unset value gives "" (and a problem when required).
func (e *Env) URL(name string, required bool) string {
	v, ok := e.Lookup(name)
	if !ok {
		if required {
			e.Problem("%s is required", name)
		}
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.Problem("%s must be an http or https URL, got %q", name, redactURL(v))
		return ""
	}
	if u.User != nil {
		e.Problem("%s must not carry credentials", name)
		return ""
	}
	return strings.TrimSuffix(v, "/")
}

// OneOf returns name's value checked against allowed, or def when unset.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v, ok := e.Lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.Problem("%s must be one of %s, got %q", name, strings.Join(allowed, ", "), v)
	return def
}

// List returns name's comma-separated value, trimmed, without empty items.
func (e *Env) List(name string) []string {
	v, _ := e.Lookup(name)
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Problem records a configuration problem.
func (e *Env) Problem(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

// ErrInvalid is wrapped by the error Err returns.
var ErrInvalid = errors.New("invalid configuration")

// Err returns nil, or one error that names every problem recorded.
func (e *Env) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(e.problems, "; "))
}

// ParseVCAPServices returns the credentials of every user-provided service
// in a VCAP_SERVICES document, flattened to strings. Credentials given by two
// services with different values are an error: which one wins would depend
// on binding order.
func ParseVCAPServices(raw []byte) (map[string]string, error) {
	var doc map[string][]struct {
		Name        string                     `json:"name"`
		Credentials map[string]json.RawMessage `json:"credentials"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	out := map[string]string{}
	from := map[string]string{}
	var conflicts []string
	for _, svc := range doc["user-provided"] {
		for key, rawValue := range svc.Credentials {
			value, ok := scalar(rawValue)
			if !ok {
				continue
			}
			if prev, seen := out[key]; seen && prev != value {
				conflicts = append(conflicts, fmt.Sprintf("%s (services %q and %q)", key, from[key], svc.Name))
				continue
			}
			out[key], from[key] = value, svc.Name
		}
	}
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return out, fmt.Errorf("credentials given twice with different values: %s", strings.Join(conflicts, ", "))
	}
	return out, nil
}

// scalar turns a JSON string, number or boolean into its string form.
func scalar(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	switch v.(type) {
	case float64, bool:
		return strings.TrimSpace(string(raw)), true
	}
	return "", false
}

func redactURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return v
}
