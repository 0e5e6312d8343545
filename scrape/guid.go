package scrape

import (
	"errors"
	"fmt"
)

// ErrInvalidGUID is returned (wrapped) for any identifier that is not a
// Cloud Foundry GUID. Object keys are only ever built from values that passed
// ValidGUID, so this is what stops path traversal at the door.
var ErrInvalidGUID = errors.New("not a valid GUID")

// ValidGUID reports whether s has the 8-4-4-4-12 hexadecimal form that Cloud
// Controller uses for every resource GUID. (paas-proxy checks every scrape
// with it: no regular expression.)
func ValidGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// CheckGUID returns an error wrapping ErrInvalidGUID that names the field when
// s is not a GUID.
func CheckGUID(field, s string) error {
	if !ValidGUID(s) {
		return fmt.Errorf("%s %.64q: %w", field, s, ErrInvalidGUID)
	}
	return nil
}
