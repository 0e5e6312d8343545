package config

import (
	"time"
)

// CF is how to reach the Cloud Foundry API.
type CF struct {
	API          string
	Username     string
	Password     string
	ClientID     string
	ClientSecret string
}

// CF reads API_ENDPOINT and one pair of credentials: UAA_USERNAME and
// UAA_PASSWORD (password grant) or CF_CLIENT_ID and CF_CLIENT_SECRET
// (client credentials).
func (e *Env) CF() CF {
	c := CF{
		API:          e.URL("API_ENDPOINT", true),
		Username:     e.String("UAA_USERNAME", ""),
		Password:     e.String("UAA_PASSWORD", ""),
		ClientID:     e.String("CF_CLIENT_ID", ""),
		ClientSecret: e.String("CF_CLIENT_SECRET", ""),
	}
	user := c.Username != "" || c.Password != ""
	client := c.ClientID != "" || c.ClientSecret != ""
	switch {
	case user && client:
		e.Problem("set either UAA_USERNAME/UAA_PASSWORD or CF_CLIENT_ID/CF_CLIENT_SECRET, not both")
	case user && (c.Username == "" || c.Password == ""):
		e.Problem("UAA_USERNAME and UAA_PASSWORD must be set together")
	case client && (c.ClientID == "" || c.ClientSecret == ""):
		e.Problem("CF_CLIENT_ID and CF_CLIENT_SECRET must be set together")
	case !user && !client:
		e.Problem("CF credentials are required: UAA_USERNAME and UAA_PASSWORD, or CF_CLIENT_ID and CF_CLIENT_SECRET")
	}
	return c
}

// Store says where target files and binding records live: a local
// directory when Path is set, an S3 bucket otherwise.
type Store struct {
	Bucket   string
	Region   string
	Endpoint string
	Path     string
	// AccessKeyID, SecretAccessKey and SessionToken, when set, sign the S3
	// requests; otherwise the AWS SDK's usual sources do.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// noTargetsPath is the TARGETS_PATH the Ruby service's manifest set next
// to its bucket: it means no directory.
const noTargetsPath = "none"

// Store reads BUCKET_NAME, AWS_REGION, S3_ENDPOINT and the AWS SDK's
// credential variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), or TARGETS_PATH. Like every setting, the credentials
// may come from VCAP_SERVICES, which the AWS SDK itself does not read.
func (e *Env) Store() Store {
	s := Store{
		Bucket:          e.String("BUCKET_NAME", ""),
		Region:          e.String("AWS_REGION", ""),
		Endpoint:        e.URL("S3_ENDPOINT", false),
		Path:            e.String("TARGETS_PATH", ""),
		AccessKeyID:     e.String("AWS_ACCESS_KEY_ID", ""),
		SecretAccessKey: e.String("AWS_SECRET_ACCESS_KEY", ""),
		SessionToken:    e.String("AWS_SESSION_TOKEN", ""),
	}
	if s.Path == noTargetsPath {
		s.Path = ""
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		e.Problem("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither")
	}
	switch {
	case s.Path != "" && s.Bucket != "":
		e.Problem("set either TARGETS_PATH or BUCKET_NAME, not both")
	case s.Path == "" && s.Bucket == "":
		e.Problem("a store is required: BUCKET_NAME (S3) or TARGETS_PATH (local directory)")
	case s.Bucket != "" && s.Region == "":
		e.Problem("AWS_REGION is required with BUCKET_NAME")
	}
	return s
}

// Catalog is the service and plan the broker offers and the updater
// reconciles.
type Catalog struct {
	ServiceID   string
	ServiceName string
	PlanID      string
	PlanName    string
}

// Catalog reads SERVICE_ID, SERVICE_NAME, PLAN_ID and PLAN_NAME. The IDs
// are required: they must stay those the platform already knows.
func (e *Env) Catalog() Catalog {
	return Catalog{
		ServiceID:   e.Required("SERVICE_ID"),
		ServiceName: e.String("SERVICE_NAME", "gds-prometheus"),
		PlanID:      e.Required("PLAN_ID"),
		PlanName:    e.String("PLAN_NAME", "prometheus"),
	}
}

// LogLevel reads LOG_LEVEL: debug, info (default) or error.
func (e *Env) LogLevel() string {
	return e.OneOf("LOG_LEVEL", "info", "debug", "info", "error")
}

// Duration returns name's value as a Go duration (e.g. "90s") no shorter
// than min, or def when unset.
func (e *Env) Duration(name string, def, min time.Duration) time.Duration {
	v, ok := e.Lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Problem("%s must be a duration such as 90s or 5m, got %q", name, v)
		return def
	}
	if d < min {
		e.Problem("%s must be at least %s, got %s", name, min, d)
		return def
	}
	return d
}
