package cfapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

const userAgent = "cf-app-discovery"

// retrying GETs answers from the CF API. go-retryablehttp retries an
// attempt that failed (a network error, 429, a 5xx but 501) with backoff,
// honouring Retry-After; the HTTP client bounds each attempt, so that a
// hung connection is retried; timeout bounds the whole, retries and the
// reading of the answer included.
type retrying struct {
	client  *retryablehttp.Client
	timeout time.Duration
}

func newRetrying(c Config, attempts *http.Client, timeout time.Duration) *retrying {
	return &retrying{
		client: &retryablehttp.Client{
			HTTPClient:   attempts,
			RetryMax:     positive(c.MaxAttempts, 4) - 1,
			RetryWaitMin: positive(c.RetryBaseDelay, 250*time.Millisecond),
			RetryWaitMax: positive(c.RetryMaxDelay, 10*time.Second),
			CheckRetry:   retryPolicy,
			Backoff:      backoff,
			// The last answer, rather than an error saying that retries
			// ran out, tells the caller CF's status and error.
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		},
		timeout: timeout,
	}
}

// get GETs url and hands the body of a 200 answer to decode. endpoint
// names the URL in errors.
func (r *retrying) get(ctx context.Context, url, endpoint string, decode func(io.Reader) error) error {
	return r.answer(ctx, url, endpoint, func(resp *http.Response) error { return decode(resp.Body) })
}

// answer GETs url as get does and hands the whole 200 answer to use, for a
// caller that needs its headers.
func (r *retrying) answer(ctx context.Context, url, endpoint string, use func(*http.Response) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		if resp != nil {
			drain(resp)
		}
		return fmt.Errorf("GET %s: %w: %w", endpoint, ErrUnavailable, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return newStatusError(resp, endpoint)
	}
	if err := use(resp); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return malformed(endpoint, err.Error())
	}
	return nil
}

// retryPolicy is go-retryablehttp's default policy (network errors, 429,
// 5xx but 501; never a 401, for which bearer has renewed the token once
// already), except that a token request UAA refused is not made again:
// asking again would not change its mind.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if uaaRefused(err) {
		return false, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff is go-retryablehttp's exponential backoff, which honours
// Retry-After on 429 and 503, with two changes: a Retry-After wait is
// capped too, so that a CF API asking for minutes does not hold a
// reconcile that long; and up to half of a computed delay is left to
// chance, so that clients do not retry in step.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	d := min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), hi)
	if resp != nil && resp.Header.Get("Retry-After") != "" {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// get GETs a path and query of the API, naming it in errors by its path
// with guids replaced, as the metrics do.
func (c *Client) get(ctx context.Context, pathAndQuery string, decode func(io.Reader) error) error {
	path, _, _ := strings.Cut(pathAndQuery, "?")
	return c.http.get(ctx, c.api+pathAndQuery, endpoint(path), decode)
}

func (c *Client) getURL(ctx context.Context, url, endpoint string, decode func(io.Reader) error) error {
	return c.http.get(ctx, url, endpoint, decode)
}

// decodeInto decodes an answer of one resource whole into v.
func decodeInto(v any) func(io.Reader) error {
	return func(body io.Reader) error { return json.NewDecoder(body).Decode(v) }
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
}

func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
