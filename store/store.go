package store

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"time"
)

var (
	// ErrNotFound is returned by Store.Get for a missing object.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed is returned by Store.Put when its Condition does
	// not hold: the object was created, changed or removed since it was
	// read.
	ErrPreconditionFailed = errors.New("object changed concurrently")
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

// Store holds objects under the keys CheckKey accepts. Bucket keeps the
// rules of what goes where; Store only keeps the bytes.
type Store interface {
	// Get returns an object's content and ETag, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) (body []byte, etag string, err error)
	// Put writes an object atomically and returns its ETag. A failed
	// Condition gives an error wrapping ErrPreconditionFailed, IfMatch on a
	// missing object included.
	Put(ctx context.Context, key string, body []byte, cond Condition) (etag string, err error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
}

// ContentETag is the ETag a store gives bytes: their hex MD5. (S3 with
// SSE-KMS answers other ETags; a Bucket remembers its own writes for that
// case.)
func ContentETag(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}
