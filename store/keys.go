package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// The bucket's prefixes. Prometheus hosts sync ActivePrefix only.
const (
	ActivePrefix   = "active/"
	InactivePrefix = "inactive/"
	BindingPrefix  = "bindings/"
	InstancePrefix = "instances/"
	keySuffix      = ".json"
)

// guidPrefixes are the prefixes whose objects are named <prefix><guid>.json.
// Every key of the bucket is built in this file, and a key of another shape
// reaches no store: a new kind of object gets its prefix here, or, for a
// single object such as a lease, its fixed key beside them.
var guidPrefixes = []string{ActivePrefix, InactivePrefix, BindingPrefix, InstancePrefix}

// LeaseKey is the key of the target updater's lease: one object, written
// only with conditions, that says which updater instance reconciles.
const LeaseKey = "leases/target-updater.json"

// ErrInvalidKey is returned for a key that does not have one of the shapes
// built here.
var ErrInvalidKey = errors.New("invalid object key")

// TargetKey is the key of an app's target file: active/<guid>.json when
// started, inactive/<guid>.json when not.
func TargetKey(appGUID string, started bool) (string, error) {
	if started {
		return guidKey(ActivePrefix, "app guid", appGUID)
	}
	return guidKey(InactivePrefix, "app guid", appGUID)
}

// BindingKey is the key of a binding record.
func BindingKey(bindingGUID string) (string, error) {
	return guidKey(BindingPrefix, "binding guid", bindingGUID)
}

// InstanceKey is the key of a service instance record.
func InstanceKey(instanceGUID string) (string, error) {
	return guidKey(InstancePrefix, "instance guid", instanceGUID)
}

func guidKey(prefix, what, guid string) (string, error) {
	if err := scrape.CheckGUID(what, guid); err != nil {
		return "", err
	}
	return prefix + guid + keySuffix, nil
}

// ParseKey splits a key built by TargetKey, BindingKey or InstanceKey into
// its prefix and GUID. Keys of any other shape give an error wrapping
// ErrInvalidKey; stores use it to refuse keys that were not built from
// validated GUIDs.
func ParseKey(key string) (prefix, guid string, err error) {
	for _, p := range guidPrefixes {
		rest, ok := strings.CutPrefix(key, p)
		if !ok {
			continue
		}
		g, ok := strings.CutSuffix(rest, keySuffix)
		if ok && scrape.ValidGUID(g) {
			return p, g, nil
		}
	}
	return "", "", fmt.Errorf("%.80q: %w", key, ErrInvalidKey)
}

// CheckKey accepts the keys a store reads and writes: those ParseKey
// accepts, and LeaseKey. Anything else gives an error wrapping
// ErrInvalidKey.
func CheckKey(key string) error {
	if key == LeaseKey {
		return nil
	}
	_, _, err := ParseKey(key)
	return err
}

// ValidPrefix reports whether keys are built under prefix: the prefixes a
// store lists, and no others.
func ValidPrefix(prefix string) bool {
	return slices.Contains(guidPrefixes, prefix)
}
