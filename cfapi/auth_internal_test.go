package cfapi

import (
	"context"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
)

// roundTripper answers every request with status and records the
// Authorization header it bore.
type roundTripper struct {
	status int
	bore   []string
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.bore = append(rt.bore, req.Header.Get("Authorization"))
	return &http.Response{StatusCode: rt.status, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// refusedRefresh is a token source whose token has expired and whose
// refresh UAA refuses, as when the refresh token has expired too.
type refusedRefresh struct{}

func (refusedRefresh) Token() (*oauth2.Token, error) {
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusUnauthorized}, ErrorCode: "invalid_token"}
}

var _ = Describe("bearer", func() {
	var (
		api    *roundTripper
		grants int
		b      *bearer
	)

	BeforeEach(func() {
		api = &roundTripper{status: http.StatusOK}
		grants = 0
		b = &bearer{base: api, tokens: &tokens{
			source: refusedRefresh{},
			grant: func(context.Context) (oauth2.TokenSource, error) {
				grants++
				return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "granted"}), nil
			},
		}}
	})

	send := func() (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/v3/apps", nil)
		Expect(err).NotTo(HaveOccurred())
		return b.RoundTrip(req)
	}

	It("renews a token UAA refuses to refresh with a new grant", func() {
		resp, err := send()
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(grants).To(Equal(1))
		Expect(api.bore).To(Equal([]string{"Bearer granted"}))
	})

	It("gives up when UAA refuses the new grant too", func() {
		b.tokens.grant = func(context.Context) (oauth2.TokenSource, error) {
			grants++
			return refusedRefresh{}, nil
		}
		_, err := send()
		Expect(uaaRefused(err)).To(BeTrue())
		Expect(grants).To(Equal(1))
		Expect(api.bore).To(BeEmpty())
	})

	It("does not renew a token UAA failed to refresh", func() {
		b.tokens.source = oauth2.ReuseTokenSource(nil, failing{})
		_, err := send()
		Expect(err).To(HaveOccurred())
		Expect(grants).To(Equal(0))
	})
})

// failing is a token source whose UAA fails (a 503), which retries may
// get past and a new grant would not.
type failing struct{}

func (failing) Token() (*oauth2.Token, error) {
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusServiceUnavailable}}
}
