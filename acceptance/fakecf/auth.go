package fakecf

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// authority is the fake UAA: it issues tokens for known users and clients
// and checks them on API requests.
type authority struct {
	mu      sync.Mutex
	users   map[string]string
	clients map[string]string
	ttl     time.Duration
	tokens  map[string]time.Time // access token -> expiry
	refresh map[string]string    // refresh token -> user
	issued  int
}

func newAuthority(opts Options) *authority {
	a := &authority{
		users:   map[string]string{DefaultUsername: DefaultPassword},
		clients: map[string]string{DefaultClientID: DefaultClientSecret},
		ttl:     opts.TokenTTL,
		tokens:  map[string]time.Time{},
		refresh: map[string]string{},
	}
	if opts.Users != nil {
		a.users = copyMap(opts.Users)
	}
	if opts.Clients != nil {
		a.clients = copyMap(opts.Clients)
	}
	if a.ttl <= 0 {
		a.ttl = time.Hour
	}
	return a
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TokensIssued is the number of access tokens the token endpoint handed out.
func (s *Server) TokensIssued() int {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return s.auth.issued
}

// RevokeTokens invalidates every access token issued so far, as an expiry
// would; API requests bearing them get 401.
func (s *Server) RevokeTokens() {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.tokens = map[string]time.Time{}
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serveToken answers POST /oauth/token for the password, client_credentials
// and refresh_token grants. The OAuth client authenticates with basic auth
// (the cf CLI's "cf" client has an empty secret) or form fields.
func (a *authority) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	clientID, secret, ok := r.BasicAuth()
	if !ok {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var subject string
	switch r.PostForm.Get("grant_type") {
	case "password":
		user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
		want, known := a.users[user]
		if clientID != "cf" || secret != "" || !known || want != pw {
			a.unauthorized(w)
			return
		}
		subject = "user:" + user
	case "client_credentials":
		want, known := a.clients[clientID]
		if !known || want != secret {
			a.unauthorized(w)
			return
		}
		subject = "client:" + clientID
	case "refresh_token":
		user, known := a.refresh[r.PostForm.Get("refresh_token")]
		if !known {
			a.unauthorized(w)
			return
		}
		subject = user
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	access, refresh := randomToken(), randomToken()
	a.tokens[access] = time.Now().Add(a.ttl)
	a.issued++
	body := map[string]any{
		"access_token": access,
		"token_type":   "bearer",
		"expires_in":   int(a.ttl.Seconds()),
		"scope":        "cloud_controller.read openid",
		"jti":          access,
	}
	if !strings.HasPrefix(subject, "client:") {
		a.refresh[refresh] = subject
		body["refresh_token"] = refresh
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *authority) unauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "Bad credentials"})
}

// check answers 401 and returns false unless r bears a live access token.
func (a *authority) check(w http.ResponseWriter, r *http.Request) bool {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		writeError(w, http.StatusUnauthorized, apiError{Code: 10002, Title: "CF-NotAuthenticated", Detail: "Authentication error"})
		return false
	}
	a.mu.Lock()
	expiry, ok := a.tokens[token]
	a.mu.Unlock()
	if !ok || time.Now().After(expiry) {
		writeError(w, http.StatusUnauthorized, apiError{Code: 1000, Title: "CF-InvalidAuthToken", Detail: "Invalid Auth Token"})
		return false
	}
	return true
}
