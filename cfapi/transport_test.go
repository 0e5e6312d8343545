package cfapi_test

import (
	"context"
	"errors"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
)

var _ = Describe("Retries", func() {
	f := useFakeCF()
	var guid string

	BeforeEach(func() {
		guid = fakecf.GUID("app", 1)
	})

	It("retries a 500 and succeeds", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Times: 1, Status: http.StatusInternalServerError})
		app, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Name).To(Equal("app-1"))
		Expect(f.server.RequestsTo("/v3/apps/" + guid)).To(Equal(2))
		Expect(cfRequests(f.reg, "/v3/apps/:guid", 500)).To(Equal(1.0))
		Expect(cfRequests(f.reg, "/v3/apps/:guid", 200)).To(Equal(1.0))
	})

	It("retries a 429 with Retry-After and succeeds", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/routes", Times: 2, Status: http.StatusTooManyRequests, RetryAfter: "1"})
		_, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.RequestsTo("/v3/routes")).To(Equal(3))
		Expect(cfRequests(f.reg, "/v3/routes", 429)).To(Equal(2.0))
	})

	It("retries a hung request after the attempt timeout", func() {
		f.cfg.AttemptTimeout = 200 * time.Millisecond
		// The client is built in JustBeforeEach; rebuild it with the short timeout.
		var err error
		f.cf, err = cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
		f.server.InjectFault(fakecf.Fault{Path: "/v3/processes", Times: 1, Hang: true})
		app, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Instances()).To(Equal(2))
		Expect(f.server.RequestsTo("/v3/processes")).To(Equal(2))
	})

	It("gives up with ErrCFUnavailable when 500s persist", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Status: http.StatusInternalServerError})
		_, err := f.cf.App(f.ctx, guid)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(errors.Is(err, cfapi.ErrAppNotVisible)).To(BeFalse())
		Expect(f.server.RequestsTo("/v3/apps/" + guid)).To(Equal(f.cfg.MaxAttempts))
		Expect(err.Error()).To(ContainSubstring("answered 500"), "the last answer is reported")
	})

	It("does not retry a 404", func() {
		_, err := f.cf.App(f.ctx, fakecf.GUID("app", 9999))
		Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
		Expect(f.server.RequestsTo("/v3/apps/" + fakecf.GUID("app", 9999))).To(Equal(1))
	})

	It("answers ErrCFUnavailable for a truncated answer", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/routes", TruncatePage: 1})
		_, err := f.cf.App(f.ctx, guid)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(err.Error()).To(ContainSubstring("malformed"))
	})

	It("answers ErrCFUnavailable when the server is gone", func() {
		f.server.Close()
		_, err := f.cf.App(f.ctx, guid)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
	})
})

var _ = Describe("Authentication", func() {
	f := useFakeCF()

	It("fetches one token with the password grant and reuses it", func() {
		for i := range 5 {
			_, err := f.cf.App(f.ctx, fakecf.GUID("app", i))
			Expect(err).NotTo(HaveOccurred())
		}
		_, err := f.cf.PlanBindings(f.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.TokenRequests()).To(Equal(1))
	})

	It("fetches a new token when CF refuses the old one", func() {
		f.server.RevokeTokens()
		_, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.TokenRequests()).To(Equal(2))
	})

	It("renews a refused token once and sends the request once more", func() {
		guid := fakecf.GUID("binding", 3)
		f.server.RevokeTokens()
		f.server.ResetCounts()
		_, err := f.cf.Binding(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.RequestsTo("/v3/service_credential_bindings/" + guid)).To(Equal(2))
		Expect(f.server.TokenRequests()).To(Equal(1))
		Expect(f.server.Requests()).To(Equal(3))
		Expect(cfRequests(f.reg, "/v3/service_credential_bindings/:guid", 401)).To(Equal(1.0))
	})

	It("renews a token refused to several requests in flight once", func() {
		f.server.RevokeTokens()
		f.server.ResetCounts()
		_, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.TokenRequests()).To(Equal(1))
		refused := cfRequests(f.reg, "/v3/apps/:guid", 401) + cfRequests(f.reg, "/v3/processes", 401) + cfRequests(f.reg, "/v3/routes", 401)
		Expect(refused).To(BeNumerically(">=", 1))
		Expect(f.server.APIRequests()).To(Equal(3+int(refused)), "each refused request is sent once more")
	})

	It("does not retry a request refused with a renewed token", func() {
		guid := fakecf.GUID("binding", 3)
		f.server.InjectFault(fakecf.Fault{Path: "/v3/service_credential_bindings/", Status: http.StatusUnauthorized})
		f.server.ResetCounts()
		_, err := f.cf.Binding(f.ctx, guid)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(err.Error()).To(ContainSubstring("answered 401"))
		Expect(f.server.RequestsTo("/v3/service_credential_bindings/" + guid)).To(Equal(2))
		Expect(f.server.TokenRequests()).To(Equal(1))
	})

	Context("with client credentials", func() {
		BeforeEach(func() {
			f.cfg.Username, f.cfg.Password = "", ""
			f.cfg.ClientID, f.cfg.ClientSecret = fakecf.DefaultClientID, fakecf.DefaultClientSecret
		})

		It("fetches one token and reuses it", func() {
			for i := range 3 {
				_, err := f.cf.App(f.ctx, fakecf.GUID("app", i))
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(f.server.TokenRequests()).To(Equal(1))
		})

		It("fetches a new token when CF refuses the old one", func() {
			_, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			f.server.RevokeTokens()
			f.server.ResetCounts()
			_, err = f.cf.Binding(f.ctx, fakecf.GUID("binding", 3))
			Expect(err).NotTo(HaveOccurred())
			Expect(f.server.TokenRequests()).To(Equal(1))
		})
	})

	It("refuses a wrong password at start", func() {
		f.cfg.Password = "wrong"
		_, err := cfapi.New(f.ctx, f.cfg)
		Expect(err).To(HaveOccurred())
	})

	It("answers ErrCFUnavailable for wrong client credentials, without retrying the refusal", func() {
		f.cfg.Username, f.cfg.Password = "", ""
		f.cfg.ClientID, f.cfg.ClientSecret = fakecf.DefaultClientID, "wrong"
		client, err := cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
		f.server.ResetCounts()
		_, err = client.Binding(f.ctx, fakecf.GUID("binding", 3))
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(f.server.TokenRequests()).To(Equal(2), "the grant and its one renewal")
	})

	It("requires credentials", func() {
		f.cfg.Username, f.cfg.Password = "", ""
		_, err := cfapi.New(f.ctx, f.cfg)
		Expect(err).To(MatchError(ContainSubstring("credentials")))
	})

	It("shares metrics between clients on one registry", func() {
		other, err := cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
		_, err = other.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		_, err = f.cf.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfRequests(f.reg, "/v3/apps/:guid", 200)).To(Equal(2.0))
		Expect(cfRequests(f.reg, "/oauth/token", 200)).To(Equal(2.0))
	})

	It("stops connecting when the context ends", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/", Hang: true})
		short, cancel := context.WithTimeout(f.ctx, 50*time.Millisecond)
		defer cancel()
		_, err := cfapi.New(short, f.cfg)
		Expect(err).To(MatchError(context.DeadlineExceeded))
		f.server.ClearFaults()
	})
})
