package targets

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalidGUID is returned (wrapped) for any identifier that is not a
// Cloud Foundry GUID. Object keys are only ever built from values that passed
// ValidGUID, so this is what stops path traversal at the door.
var ErrInvalidGUID = errors.New("not a valid GUID")

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidGUID reports whether s has the 8-4-4-4-12 hexadecimal form that Cloud
// Controller uses for every resource GUID.
func ValidGUID(s string) bool {
	return guidPattern.MatchString(s)
}

// CheckGUID returns an error wrapping ErrInvalidGUID that names the field when
// s is not a GUID.
func CheckGUID(field, s string) error {
	if !ValidGUID(s) {
		return fmt.Errorf("%s %q: %w", field, truncate(s, 64), ErrInvalidGUID)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
