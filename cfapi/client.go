package cfapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/config"
)

// Config configures New. Give either Username and Password (the
// password grant) or ClientID and ClientSecret (client credentials).
type Config struct {
	// API is the CF API root URL (API_ENDPOINT).
	API string
	// Username and Password are a CF user's (UAA_USERNAME, UAA_PASSWORD).
	Username string
	Password string
	// ClientID and ClientSecret are a UAA client's (CF_CLIENT_ID,
	// CF_CLIENT_SECRET); used when Username is empty.
	ClientID     string
	ClientSecret string
	// PlanID is the broker catalog id of our plan (PLAN_ID).
	PlanID string
	// HTTPClient supplies the base transport, the cookie jar and the
	// overall timeout of one request, retries included (default 2
	// minutes). It is not modified.
	HTTPClient *http.Client
	// Registerer receives the client's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// MaxAttempts bounds the attempts of one GET (default 4).
	MaxAttempts int
	// RetryBaseDelay is the first backoff delay, doubled on each further
	// retry (default 250ms).
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps a backoff delay and a Retry-After wait (default 10s).
	RetryMaxDelay time.Duration
	// AttemptTimeout bounds one attempt, so that a hung connection is
	// retried (default 30s).
	AttemptTimeout time.Duration
}

// ConfigFor is the client configuration for the CF settings a program read, with
// the plan the client lists bindings of and the registry of its metrics.
func ConfigFor(c config.CF, planID string, reg prometheus.Registerer) Config {
	return Config{
		API: c.API, Username: c.Username, Password: c.Password,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		PlanID: planID, Registerer: reg,
	}
}

const (
	defaultTimeout = 2 * time.Minute
	// concurrency bounds the requests one call has in flight.
	concurrency = 4
)

// Client reads apps and service bindings from the CF API v3 for the
// broker and the reconciler. Every request bears a UAA access token,
// renewed once when CF or UAA refuses it; every attempt is counted and
// timed; failed attempts are retried with backoff. Its methods are safe
// for concurrent use.
type Client struct {
	api    string
	planID string
	http   *retrying

	mu        sync.Mutex
	planGUIDs []string
}

// New discovers the token endpoint from the API root and, for the
// password grant, fetches a token. Its metrics go to c.Registerer.
func New(ctx context.Context, c Config) (*Client, error) {
	if c.API == "" {
		return nil, errors.New("CF API URL is required")
	}
	creds, err := credentialsOf(c)
	if err != nil {
		return nil, err
	}
	api := strings.TrimRight(c.API, "/")
	metrics, err := newMetrics(c.Registerer)
	if err != nil {
		return nil, err
	}
	base, timeout := http.DefaultTransport, defaultTimeout
	var jar http.CookieJar
	if c.HTTPClient != nil {
		if c.HTTPClient.Transport != nil {
			base = c.HTTPClient.Transport
		}
		if c.HTTPClient.Timeout > 0 {
			timeout = c.HTTPClient.Timeout
		}
		jar = c.HTTPClient.Jar
	}
	attemptTimeout := positive(c.AttemptTimeout, 30*time.Second)
	// Every attempt, token requests included, is measured and bounded by
	// the attempt timeout.
	plain := &http.Client{Transport: measured{base: base, metrics: metrics}, Timeout: attemptTimeout, Jar: jar}
	tokenURL, err := discoverTokenURL(ctx, newRetrying(c, plain, timeout), api)
	if err != nil {
		return nil, fmt.Errorf("connecting to the CF API at %s: %w", c.API, err)
	}
	grant := creds.grant(tokenURL, plain)
	source, err := grant(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the CF API at %s: %w: %w", c.API, ErrUnavailable, err)
	}
	authed := &http.Client{
		Transport: &bearer{tokens: &tokens{grant: grant, source: source}, base: plain.Transport},
		Timeout:   attemptTimeout, Jar: jar,
	}
	return &Client{api: api, planID: c.PlanID, http: newRetrying(c, authed, timeout)}, nil
}
