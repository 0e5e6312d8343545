package targets

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Settings are a tenant's settings for the scrape of one app, from bind
// parameters or app annotations (docs/design.md, "Tenant settings"). The
// zero value sets nothing: the app's targets are as without settings.
type Settings struct {
	// Path is the metrics path, written as __metrics_path__; "" keeps the
	// one derived from the route.
	Path string
	// Port chooses the app's route whose destinations on its web process
	// all have this port; 0 keeps the usual route choice.
	Port int
	// ScrapeInterval and ScrapeTimeout are written as __scrape_interval__
	// and __scrape_timeout__. They are both set or both zero, and the
	// timeout never exceeds the interval.
	ScrapeInterval time.Duration
	ScrapeTimeout  time.Duration
	// Job replaces the app's name as the job label; "" keeps it.
	Job string
	// Labels are extra target labels; nil when there are none.
	Labels map[string]string
}

// The bounds of the scrape interval and timeout, and the defaults of the
// one a tenant leaves out when setting the other: Prometheus' own defaults
// (1m and 10s), clipped so that the timeout never exceeds the interval.
const (
	MinScrapeInterval     = 10 * time.Second
	MaxScrapeInterval     = 2 * time.Minute
	MinScrapeTimeout      = time.Second
	DefaultScrapeInterval = time.Minute
	DefaultScrapeTimeout  = 10 * time.Second
)

// The bind parameters.
const (
	ParamPath           = "path"
	ParamPort           = "port"
	ParamScrapeInterval = "scrape_interval"
	ParamScrapeTimeout  = "scrape_timeout"
	ParamJob            = "job"
	ParamLabels         = "labels"
)

// IsParameter reports whether name is a bind parameter.
func IsParameter(name string) bool {
	return slices.Contains(paramNames, name)
}

// annotationParams maps each annotation a tenant may set to the bind
// parameter it stands for. Labels have no annotation.
var annotationParams = map[string]string{
	"prometheus.io/path":            ParamPath,
	"prometheus.io/port":            ParamPort,
	"prometheus.io/scrape-interval": ParamScrapeInterval,
	"prometheus.io/scrape-timeout":  ParamScrapeTimeout,
	"prometheus.io/job":             ParamJob,
}

// InvalidSetting is a bind parameter or an annotation that cannot be used.
type InvalidSetting struct {
	// Key is the bind parameter ("port") or the annotation
	// ("prometheus.io/port"); "" for the parameters as a whole.
	Key string
	// Annotation says Key is an annotation.
	Annotation bool
	// Reason says what is wrong and what is accepted, for the tenant.
	Reason string
}

// String names the setting and says what is wrong with it.
func (i InvalidSetting) String() string {
	if i.Key == "" {
		return i.Reason
	}
	return fmt.Sprintf("%.64q: %s", i.Key, i.Reason)
}

// ParametersError lists every invalid bind parameter. Its message names
// each one with the form it accepts, for the tenant: it is the description
// of the broker's 400 answer, which Cloud Controller shows as "Service
// broker error: …". It never repeats a value.
type ParametersError struct {
	Invalid []InvalidSetting
}

// Error is the description of the broker's 400 answer.
func (e *ParametersError) Error() string {
	parts := make([]string, len(e.Invalid))
	for i, s := range e.Invalid {
		parts[i] = s.String()
	}
	return "invalid bind parameters: " + strings.Join(parts, "; ")
}

// ParseParameters parses bind parameters (the bind request's "parameters"
// object; empty or null for none) strictly: an unknown key, a value of the
// wrong type or out of range, a timeout over the interval give a
// *ParametersError naming every bad key. Whether a port is served by a
// route depends on the app: CheckApp says.
func ParseParameters(raw json.RawMessage) (Settings, error) {
	doc, err := decodeParameters(raw)
	if err != nil {
		return Settings{}, &ParametersError{Invalid: []InvalidSetting{{Reason: err.Error()}}}
	}
	if doc == nil {
		return Settings{}, nil
	}
	s, invalid := parse(doc, func(param string) string { return param })
	if len(invalid) > 0 {
		return Settings{}, &ParametersError{Invalid: invalid}
	}
	return s, nil
}

// parseAnnotations reads the settings among an app's annotations
// leniently: an invalid value is left out (the default applies to that
// setting) and reported.
func parseAnnotations(annotations map[string]string) (Settings, []InvalidSetting) {
	doc := map[string]any{}
	keys := map[string]string{}
	for annotation, param := range annotationParams {
		v, ok := annotations[annotation]
		if !ok {
			continue
		}
		keys[param] = annotation
		doc[param] = v
		if param == ParamPort && v != "" && strings.Trim(v, "0123456789") == "" {
			// An annotation is a string; the schema wants the number.
			doc[param] = json.Number(v)
		}
	}
	if len(doc) == 0 {
		return Settings{}, nil
	}
	s, invalid := parse(doc, func(param string) string { return keys[param] })
	for i := range invalid {
		invalid[i].Annotation = true
	}
	return s, invalid
}

// parse turns a parameters object into settings, leaving out and
// reporting each bad key. key names a parameter as the tenant gave it.
func parse(doc any, key func(param string) string) (Settings, []InvalidSetting) {
	bad := schemaErrors(doc)
	if reason, ok := bad[""]; ok {
		return Settings{}, []InvalidSetting{{Reason: reason}}
	}
	obj := doc.(map[string]any) // the schema says it is an object
	var s Settings
	durations := map[string]time.Duration{}
	for param, v := range obj {
		if _, ok := bad[param]; ok {
			continue
		}
		switch param {
		case ParamPath:
			s.Path = v.(string)
		case ParamPort:
			s.Port = jsonInt(v)
		case ParamJob:
			s.Job = v.(string)
		case ParamLabels:
			s.Labels = stringMap(v.(map[string]any))
		case ParamScrapeInterval, ParamScrapeTimeout:
			d, err := model.ParseDuration(v.(string))
			lo, hi := MinScrapeInterval, MaxScrapeInterval
			if param == ParamScrapeTimeout {
				lo = MinScrapeTimeout
			}
			if err != nil || time.Duration(d) < lo || time.Duration(d) > hi {
				bad[param] = expected(param)
				continue
			}
			durations[param] = time.Duration(d)
		}
	}
	interval, hasInterval := durations[ParamScrapeInterval]
	timeout, hasTimeout := durations[ParamScrapeTimeout]
	if hasInterval && hasTimeout && timeout > interval {
		bad[ParamScrapeTimeout] = "exceeds scrape_interval (Prometheus drops such a target); expected " + descriptions[ParamScrapeTimeout]
		hasTimeout = false
	}
	switch {
	case hasInterval && hasTimeout:
		s.ScrapeInterval, s.ScrapeTimeout = interval, timeout
	case hasInterval:
		s.ScrapeInterval, s.ScrapeTimeout = interval, min(DefaultScrapeTimeout, interval)
	case hasTimeout:
		s.ScrapeInterval, s.ScrapeTimeout = max(DefaultScrapeInterval, timeout), timeout
	}
	var invalid []InvalidSetting
	for param, reason := range bad {
		invalid = append(invalid, InvalidSetting{Key: key(param), Reason: reason})
	}
	slices.SortFunc(invalid, func(a, b InvalidSetting) int { return cmp.Compare(a.Key, b.Key) })
	return s, invalid
}

// jsonInt is an integer the schema accepted (a json.Number, possibly
// written 8080.0).
func jsonInt(v any) int {
	f, _ := v.(json.Number).Float64()
	return int(f)
}

func stringMap(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.(string)
	}
	return out
}

// Over returns s with each setting it leaves unset taken from lower: bind
// parameters over annotations. The scrape interval and timeout go
// together, from the settings that set them.
func (s Settings) Over(lower Settings) Settings {
	out := s
	out.Path = cmp.Or(s.Path, lower.Path)
	out.Port = cmp.Or(s.Port, lower.Port)
	out.Job = cmp.Or(s.Job, lower.Job)
	if s.ScrapeInterval == 0 {
		out.ScrapeInterval, out.ScrapeTimeout = lower.ScrapeInterval, lower.ScrapeTimeout
	}
	if len(s.Labels) == 0 {
		out.Labels = lower.Labels
	}
	return out
}

// Resolve returns the settings that apply to app when its bindings' bind
// parameters give bind: bind over the app's annotations over the defaults.
// It also returns what it left out: each invalid annotation, an annotated
// port that no route of the app serves, and a bound port that none serves
// any more (the routes changed since the bind).
func Resolve(app App, bind Settings) (Settings, []InvalidSetting) {
	annotated, invalid := parseAnnotations(app.Annotations)
	if annotated.Port != 0 && !servesPort(app.Routes, annotated.Port) {
		invalid = append(invalid, InvalidSetting{Key: "prometheus.io/port", Annotation: true, Reason: portNotServed(app.Routes)})
		annotated.Port = 0
	}
	if bind.Port != 0 && !servesPort(app.Routes, bind.Port) {
		invalid = append(invalid, InvalidSetting{Key: ParamPort, Reason: portNotServed(app.Routes)})
		bind.Port = 0
	}
	return bind.Over(annotated), invalid
}

// CheckApp checks the bind parameters' settings against the app they
// bind: a port must be served by one of its routes. The error is a
// *ParametersError.
func (s Settings) CheckApp(app App) error {
	if s.Port != 0 && !servesPort(app.Routes, s.Port) {
		return &ParametersError{Invalid: []InvalidSetting{{Key: ParamPort, Reason: portNotServed(app.Routes)}}}
	}
	return nil
}

// BindingSettings are the settings of one binding of an app, with when
// the binding was made: the oldest binding's settings take precedence
// (bindings made at the same time in the order of their GUIDs).
type BindingSettings struct {
	BindingGUID string
	Settings    Settings
	Created     time.Time
}

// ConflictError says that two bindings of one app set the same settings
// differently. Its message, for the tenant, says how to resolve it.
type ConflictError struct {
	// Binding is the binding whose settings were kept; Other the one that
	// disagrees with it.
	Binding, Other string
	// Keys are the bind parameters they disagree on.
	Keys []string
}

// Error says which settings disagree and how the tenant resolves it.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("the bind parameters %s disagree with those of binding %s of the same app: an app has one "+
		"set of targets for all its bindings, so bind with the same parameters, or unbind binding %s first",
		strings.Join(e.Keys, ", "), e.Binding, e.Binding)
}

// Combine returns the settings of an app bound several times, given its
// bindings in any order: each setting comes from the oldest binding that
// sets it. When a newer binding sets one differently, the result is still
// that of the older binding and the error, a *ConflictError, names the
// first disagreement.
func Combine(bindings []BindingSettings) (Settings, error) {
	var out Settings
	var conflict *ConflictError
	from := map[string]string{} // parameter -> binding that set it
	oldestFirst := slices.SortedFunc(slices.Values(bindings), func(x, y BindingSettings) int {
		return cmp.Or(x.Created.Compare(y.Created), cmp.Compare(x.BindingGUID, y.BindingGUID))
	})
	for _, b := range oldestFirst {
		if keys := differences(out, b.Settings); len(keys) > 0 && conflict == nil {
			conflict = &ConflictError{Binding: from[keys[0]], Other: b.BindingGUID, Keys: keys}
		}
		for _, param := range setParams(b.Settings) {
			if _, ok := from[param]; !ok {
				from[param] = b.BindingGUID
			}
		}
		out = out.Over(b.Settings)
	}
	if conflict != nil {
		return out, conflict
	}
	return out, nil
}

// setParams lists the parameters s sets; the interval and timeout count
// as one.
func setParams(s Settings) []string {
	var out []string
	if s.Path != "" {
		out = append(out, ParamPath)
	}
	if s.Port != 0 {
		out = append(out, ParamPort)
	}
	if s.ScrapeInterval != 0 {
		out = append(out, ParamScrapeInterval+"/"+ParamScrapeTimeout)
	}
	if s.Job != "" {
		out = append(out, ParamJob)
	}
	if len(s.Labels) > 0 {
		out = append(out, ParamLabels)
	}
	return out
}

// differences lists the parameters both a and b set, to different values.
func differences(a, b Settings) []string {
	var out []string
	if a.Path != "" && b.Path != "" && a.Path != b.Path {
		out = append(out, ParamPath)
	}
	if a.Port != 0 && b.Port != 0 && a.Port != b.Port {
		out = append(out, ParamPort)
	}
	if a.ScrapeInterval != 0 && b.ScrapeInterval != 0 &&
		(a.ScrapeInterval != b.ScrapeInterval || a.ScrapeTimeout != b.ScrapeTimeout) {
		out = append(out, ParamScrapeInterval+"/"+ParamScrapeTimeout)
	}
	if a.Job != "" && b.Job != "" && a.Job != b.Job {
		out = append(out, ParamJob)
	}
	if len(a.Labels) > 0 && len(b.Labels) > 0 && !maps.Equal(a.Labels, b.Labels) {
		out = append(out, ParamLabels)
	}
	return out
}

// apply writes the settings into the labels of a target group. Extra
// labels never replace a label the group already has.
func (s Settings) apply(labels map[string]string) {
	for name, value := range s.Labels {
		if _, ok := labels[name]; !ok {
			labels[name] = value
		}
	}
	if s.Path != "" {
		labels["__metrics_path__"] = s.Path
	}
	if s.Job != "" {
		labels["job"] = s.Job
	}
	if s.ScrapeInterval != 0 {
		labels["__scrape_interval__"] = model.Duration(s.ScrapeInterval).String()
		labels["__scrape_timeout__"] = model.Duration(s.ScrapeTimeout).String()
	}
}

// IsZero reports whether s sets nothing: the targets are as without
// settings, and Combine takes nothing from a binding with such settings.
func (s Settings) IsZero() bool {
	return s.Path == "" && s.Port == 0 && s.ScrapeInterval == 0 && s.ScrapeTimeout == 0 && s.Job == "" && len(s.Labels) == 0
}
