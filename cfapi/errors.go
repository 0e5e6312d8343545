package cfapi

import (
	"errors"
	"time"
)

var (
	// ErrAppNotVisible means the CF API does not show the app to our user:
	// it does not exist, or the monitoring user is not a Space Auditor in its
	// space (CF answers 404 for both, sometimes 403).
	ErrAppNotVisible = errors.New("app not visible in the CF API")
	// ErrBindingNotFound means the CF API does not know the binding.
	ErrBindingNotFound = errors.New("service binding not found in the CF API")
	// ErrUnavailable wraps failures to talk to the CF API (network errors,
	// 5xx, 429 after retries, malformed answers). Nothing may be deleted on
	// the strength of an answer that failed this way.
	ErrUnavailable = errors.New("CF API unavailable")
)

// Binding is an app binding as the CF API lists it.
type Binding struct {
	GUID      string
	AppGUID   string
	PlanGUID  string
	CreatedAt time.Time
	// Deleting is true while Cloud Controller is unbinding it (last
	// operation "delete" in progress): CC marks it so before calling the
	// broker, and removes it once the broker has answered.
	Deleting bool
}
