package fakecf_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

// clock is a controllable fakecf clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// apiClient reads the fake's API with a token of the default client.
type apiClient struct {
	server *fakecf.Server
	token  string
}

func newAPIClient(server *fakecf.Server) *apiClient {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequest(http.MethodPost, server.URL()+"/oauth/token", strings.NewReader(form.Encode()))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fakecf.DefaultClientID, fakecf.DefaultClientSecret)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
	return &apiClient{server: server, token: body.AccessToken}
}

// do sends a request with the token to a path or an absolute URL.
func (c *apiClient) do(method, target string) (*http.Response, []byte) {
	if strings.HasPrefix(target, "/") {
		target = c.server.URL() + target
	}
	req, err := http.NewRequest(method, target, nil)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	return resp, body
}

func (c *apiClient) get(target string) (*http.Response, []byte) {
	return c.do(http.MethodGet, target)
}

// list GETs one page of a listing, which must answer 200.
func (c *apiClient) list(target string) listing {
	resp, body := c.do(http.MethodGet, target)
	ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), string(body))
	var l listing
	ExpectWithOffset(1, json.Unmarshal(body, &l)).To(Succeed())
	return l
}

// all walks every page of a listing through next.href.
func (c *apiClient) all(target string) (resources []map[string]any, pages int) {
	for target != "" {
		l := c.list(target)
		pages++
		resources = append(resources, l.Resources...)
		target = ""
		if l.Pagination.Next != nil {
			target = l.Pagination.Next.Href
		}
	}
	return resources, pages
}

// field digs a value out of decoded JSON by keys.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// webProcesses lists the app's web processes through the API as
// "guid=instances", oldest first.
func (c *apiClient) webProcesses(appGUID string) []string {
	var out []string
	for _, p := range c.list("/v3/processes?types=web&app_guids=" + appGUID).Resources {
		out = append(out, p["guid"].(string)+"="+jsonInt(p["instances"]))
	}
	return out
}

func jsonInt(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
