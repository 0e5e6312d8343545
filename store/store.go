package store

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// Bucket prefixes (SPEC §3). Prometheus hosts sync ActivePrefix only.
const (
	ActivePrefix   = "active/"
	InactivePrefix = "inactive/"
	BindingPrefix  = "bindings/"
	keySuffix      = ".json"
)

var (
	// ErrNotFound is returned by Store.Get for a missing object.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed is returned by Store.Put when its Condition does
	// not hold: the object changed since it was read.
	ErrPreconditionFailed = errors.New("object changed concurrently")
	// ErrInvalidKey is returned for a key that does not have one of the
	// shapes built by TargetKey and BindingKey.
	ErrInvalidKey = errors.New("invalid object key")
)

// Object is one entry of a store listing.
type Object struct {
	Key string
	// ETag is the hex MD5 of the content, without quotes, so that a caller
	// can tell whether rendered bytes differ without reading the object.
	ETag         string
	LastModified time.Time
}

// Condition makes a Put conditional. The zero value is unconditional.
type Condition struct {
	// IfMatch: write only if the object exists with this ETag.
	IfMatch string
	// IfNoneMatch: write only if the object does not exist.
	IfNoneMatch bool
}

// Store holds target files and binding records under keys built by
// TargetKey and BindingKey.
type Store interface {
	// Get returns an object's content and ETag, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) (body []byte, etag string, err error)
	// Put writes an object atomically and returns its ETag. A failed
	// Condition gives an error wrapping ErrPreconditionFailed.
	Put(ctx context.Context, key string, body []byte, cond Condition) (etag string, err error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
}

// TargetKey is the key of an app's target file: active/<guid>.json when
// started, inactive/<guid>.json when not.
func TargetKey(appGUID string, started bool) (string, error) {
	if err := scrape.CheckGUID("app guid", appGUID); err != nil {
		return "", err
	}
	if started {
		return ActivePrefix + appGUID + keySuffix, nil
	}
	return InactivePrefix + appGUID + keySuffix, nil
}

// BindingKey is the key of a binding record.
func BindingKey(bindingGUID string) (string, error) {
	if err := scrape.CheckGUID("binding guid", bindingGUID); err != nil {
		return "", err
	}
	return BindingPrefix + bindingGUID + keySuffix, nil
}

// ParseKey splits a key built by TargetKey or BindingKey into its prefix and
// GUID. Keys of any other shape give an error wrapping ErrInvalidKey; stores
// use it to refuse keys that were not built from validated GUIDs.
func ParseKey(key string) (prefix, guid string, err error) {
	for _, p := range []string{ActivePrefix, InactivePrefix, BindingPrefix} {
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

// ContentETag is the ETag a store gives bytes: their hex MD5. (S3 with
// SSE-KMS answers other ETags; the reconciler remembers its own writes for
// that case.)
func ContentETag(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}
