package cfapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

var (
	// ErrAppNotVisible means the CF API does not show the app to our user:
	// it does not exist, or the monitoring user is not a Space Auditor in its
	// space (CF answers 404 for both, sometimes 403).
	ErrAppNotVisible = errors.New("app not visible in the CF API")
	// ErrBindingNotFound means the CF API does not know the binding.
	ErrBindingNotFound = errors.New("service binding not found in the CF API")
	// ErrUnavailable wraps failures to talk to the CF API (network errors,
	// 5xx, 429 after retries, malformed answers, incomplete listings).
	// Nothing may be deleted on the strength of an answer that failed this
	// way.
	ErrUnavailable = errors.New("CF API unavailable")
)

// errListingChanged means resources were added or removed while a listing
// was paged through, so that a page may have skipped or repeated some.
var errListingChanged = fmt.Errorf("%w: the listing changed while it was read", ErrUnavailable)

// statusError is an answer other than 200. It wraps ErrUnavailable;
// callers turn the statuses that mean "not there" into their own errors.
type statusError struct {
	endpoint string
	status   int
	detail   string
}

func newStatusError(resp *http.Response, endpoint string) error {
	e := &statusError{endpoint: endpoint, status: resp.StatusCode}
	var body resource.CloudFoundryErrors
	if data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16)); err == nil && json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		e.detail = body.Errors[0].Title + ": " + body.Errors[0].Detail
	}
	return e
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%v: GET %s answered %d", ErrUnavailable, e.endpoint, e.status)
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg
}

func (e *statusError) Unwrap() error { return ErrUnavailable }

// statusOf is the status of endpoint's answer that err reports, 0 when
// err is not such an answer.
func statusOf(err error, endpoint string) int {
	var se *statusError
	if !errors.As(err, &se) || se.endpoint != endpoint {
		return 0
	}
	return se.status
}

func malformed(endpoint, why string) error {
	return fmt.Errorf("%w: GET %s: malformed answer: %s", ErrUnavailable, endpoint, why)
}
