package cfapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// cfCLIClient is the UAA client the password grant goes through: the cf
// CLI's, which has an empty secret.
const cfCLIClient = "cf"

// grant obtains a new token source from UAA.
type grant func(ctx context.Context) (oauth2.TokenSource, error)

// credentials are what UAA grants tokens for: a user's (the password
// grant) or a UAA client's (client credentials).
type credentials struct {
	username, password     string
	clientID, clientSecret string
}

func credentialsOf(c Config) (credentials, error) {
	switch {
	case c.Username != "" || c.Password != "":
		return credentials{username: c.Username, password: c.Password}, nil
	case c.ClientID != "" && c.ClientSecret != "":
		return credentials{clientID: c.ClientID, clientSecret: c.ClientSecret}, nil
	default:
		return credentials{}, errors.New("CF API credentials are required: a username and password, or a client id and secret")
	}
}

// grant is the grant of the credentials at tokenURL: the password grant
// fetches a token at once, client credentials on first use. Tokens are
// requested through uaa.
func (cr credentials) grant(tokenURL string, uaa *http.Client) grant {
	// oauth2 finds the HTTP client of its token requests in a context.
	withClient := func(ctx context.Context) context.Context {
		return context.WithValue(ctx, oauth2.HTTPClient, uaa)
	}
	if cr.clientID != "" {
		cfg := &clientcredentials.Config{ClientID: cr.clientID, ClientSecret: cr.clientSecret, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}
		return func(context.Context) (oauth2.TokenSource, error) {
			return cfg.TokenSource(withClient(context.Background())), nil
		}
	}
	cfg := &oauth2.Config{ClientID: cfCLIClient, Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	return func(ctx context.Context) (oauth2.TokenSource, error) {
		token, err := cfg.PasswordCredentialsToken(withClient(ctx), cr.username, cr.password)
		if err != nil {
			return nil, err
		}
		// Refreshing the token on expiry outlives the request that made
		// the grant.
		return cfg.TokenSource(withClient(context.Background()), token), nil
	}
}

// tokens holds the token source that API requests take their access token
// from, and replaces it when CF refuses its token.
//
// go-cfclient's authenticated client is not used for this: it renews a
// refused token by swapping its token source without a lock, a data race
// between concurrent requests, and once per refused request, so that one
// revoked token costs a grant for every request in flight. The grants are
// golang.org/x/oauth2's, as in go-cfclient.
type tokens struct {
	grant grant

	mu     sync.Mutex
	source oauth2.TokenSource
}

func (t *tokens) current() oauth2.TokenSource {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.source
}

// renew replaces refused, the source whose token CF refused, with a new
// grant, unless a request refused at the same time has done so already:
// one refused token costs one grant. Requests wait for the grant.
func (t *tokens) renew(ctx context.Context, refused oauth2.TokenSource) (oauth2.TokenSource, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.source != refused {
		return t.source, nil
	}
	source, err := t.grant(ctx)
	if err != nil {
		return nil, fmt.Errorf("renewing the access token CF refused: %w", err)
	}
	t.source = source
	return source, nil
}

// bearer sends each request with the current access token. When CF
// refuses the token (401), or UAA refuses to refresh it, it renews the
// token with a fresh grant once and sends the request once more; a second
// refusal is the answer.
type bearer struct {
	tokens *tokens
	base   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	source := b.tokens.current()
	resp, err := b.send(req, source)
	switch {
	case err == nil && resp.StatusCode == http.StatusUnauthorized:
		drain(resp)
	case !uaaRefused(err):
		return resp, err
	}
	if source, err = b.tokens.renew(req.Context(), source); err != nil {
		return nil, err
	}
	return b.send(req, source)
}

func (b *bearer) send(req *http.Request, source oauth2.TokenSource) (*http.Response, error) {
	return (&oauth2.Transport{Source: source, Base: b.base}).RoundTrip(req)
}

// uaaRefused reports whether err is UAA's refusal of a token request: the
// credentials, or the refresh token, are not good (any 4xx).
func uaaRefused(err error) bool {
	var uaa *oauth2.RetrieveError
	return errors.As(err, &uaa) && uaa.Response != nil &&
		uaa.Response.StatusCode >= http.StatusBadRequest && uaa.Response.StatusCode < http.StatusInternalServerError
}

// discoverTokenURL reads the UAA server's address from the API root,
// which needs no token, as go-cfclient and the cf CLI do.
func discoverTokenURL(ctx context.Context, root *retrying, api string) (string, error) {
	var r resource.Root
	if err := root.get(ctx, api+"/", "/", decodeInto(&r)); err != nil {
		return "", err
	}
	if r.Links.Uaa.Href == "" {
		return "", malformed("/", "no UAA link")
	}
	return strings.TrimRight(r.Links.Uaa.Href, "/") + "/oauth/token", nil
}
