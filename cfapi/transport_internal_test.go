package cfapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
)

var _ = Describe("retryPolicy", func() {
	answer := func(status int) *http.Response {
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{}}
	}

	DescribeTable("what is tried again",
		func(resp *http.Response, err error, retry bool) {
			again, _ := retryPolicy(context.Background(), resp, err)
			Expect(again).To(Equal(retry))
		},
		Entry("a network error", nil, &url.Error{Op: "Get", URL: "http://127.0.0.1/v3/apps", Err: errors.New("connection reset by peer")}, true),
		Entry("429", answer(http.StatusTooManyRequests), nil, true),
		Entry("500", answer(http.StatusInternalServerError), nil, true),
		Entry("502", answer(http.StatusBadGateway), nil, true),
		Entry("503", answer(http.StatusServiceUnavailable), nil, true),
		Entry("200", answer(http.StatusOK), nil, false),
		Entry("401: the token was renewed once already", answer(http.StatusUnauthorized), nil, false),
		Entry("403", answer(http.StatusForbidden), nil, false),
		Entry("404", answer(http.StatusNotFound), nil, false),
		Entry("501", answer(http.StatusNotImplemented), nil, false),
		Entry("UAA refusing the credentials", nil, &url.Error{Op: "Get", URL: "http://127.0.0.1/v3/apps",
			Err: &oauth2.RetrieveError{Response: answer(http.StatusUnauthorized)}}, false),
		Entry("UAA failing", nil, &url.Error{Op: "Get", URL: "http://127.0.0.1/v3/apps",
			Err: &oauth2.RetrieveError{Response: answer(http.StatusBadGateway)}}, true),
	)

	It("stops when the call's context has ended", func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		again, _ := retryPolicy(ctx, answer(http.StatusInternalServerError), nil)
		Expect(again).To(BeFalse())
	})
})

var _ = Describe("backoff", func() {
	const lo, hi = 100 * time.Millisecond, 10 * time.Second

	It("doubles the delay on each retry, up to the cap, less up to half by chance", func() {
		for attempt, full := range []time.Duration{lo, 2 * lo, 4 * lo, 8 * lo} {
			for range 20 {
				Expect(backoff(lo, hi, attempt, nil)).To(And(
					BeNumerically(">=", full/2), BeNumerically("<=", full)))
			}
		}
		Expect(backoff(lo, hi, 30, nil)).To(BeNumerically("<=", hi))
	})

	It("leaves part of the delay to chance, so that clients do not retry in step", func() {
		delays := map[time.Duration]bool{}
		for range 20 {
			delays[backoff(lo, hi, 3, nil)] = true
		}
		Expect(len(delays)).To(BeNumerically(">", 1))
	})

	It("waits as long as Retry-After asks, up to the cap", func() {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}}
		Expect(backoff(lo, hi, 0, resp)).To(Equal(3 * time.Second))
		resp.Header.Set("Retry-After", "120")
		Expect(backoff(lo, hi, 0, resp)).To(Equal(hi))
	})
})
