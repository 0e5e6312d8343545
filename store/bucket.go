package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Bucket keeps the bucket's rules over a Store: which key holds what, where
// an app's target file goes and how it moves, how records are read and
// written. The broker and the reconciler go through it and never build a
// key. Its methods are safe for concurrent use.
//
// An app has one target file: in active/ while it is started, in inactive/
// otherwise. A move writes the new place first and removes the old one
// after, so the file is never lost; a failure between the two leaves both
// for a while (the operation fails, and the next one removes the stale
// file), never neither.
type Bucket struct {
	st Store

	// written remembers, per target key, the ETag the store gave a write
	// planned from a listing and the MD5 of the bytes written. Where ETags
	// are not MD5s of the content (S3 with SSE-KMS), this is how a listing
	// tells that a file still holds what was written, without reading it.
	// List drops the entries of files that are gone, so it holds at most
	// one entry per target file.
	mu      sync.Mutex
	written map[string]writtenTarget
}

// writtenTarget is what the bucket last wrote to a key.
type writtenTarget struct {
	etag string // as the store answered the write
	md5  string // of the bytes written
}

// NewBucket keeps the bucket's rules over st.
func NewBucket(st Store) *Bucket {
	return &Bucket{st: st}
}

// ErrUnreadableRecord marks a record that exists but cannot be parsed: it
// names no app.
var ErrUnreadableRecord = errors.New("unreadable record")

// Target is an app's target file as it should be.
type Target struct {
	AppGUID string
	// Started puts the file in active/; inactive/ otherwise.
	Started bool
	Body    []byte
}

// TargetFiles is what the bucket holds of one app's target files, as
// listed: nil where there is none.
type TargetFiles struct {
	Active, Inactive *Object
}

func (f TargetFiles) in(started bool) *Object {
	if started {
		return f.Active
	}
	return f.Inactive
}

// Contents is a listing of the bucket: keys, ETags and times, by GUID.
type Contents struct {
	Bindings map[string]Object // by binding guid
	Active   map[string]Object // by app guid
	Inactive map[string]Object // by app guid
}

// TargetFiles returns what the listing shows of an app's target files.
func (c Contents) TargetFiles(appGUID string) TargetFiles {
	var f TargetFiles
	if o, ok := c.Active[appGUID]; ok {
		f.Active = &o
	}
	if o, ok := c.Inactive[appGUID]; ok {
		f.Inactive = &o
	}
	return f
}

// List lists the binding records, then active/, then inactive/. It reads
// no object.
func (b *Bucket) List(ctx context.Context) (Contents, error) {
	var c Contents
	var err error
	if c.Bindings, err = b.list(ctx, BindingPrefix); err != nil {
		return Contents{}, err
	}
	if c.Active, err = b.list(ctx, ActivePrefix); err != nil {
		return Contents{}, err
	}
	if c.Inactive, err = b.list(ctx, InactivePrefix); err != nil {
		return Contents{}, err
	}
	b.forgetUnlisted(c)
	return c, nil
}

// ListBindings lists the binding records only.
func (b *Bucket) ListBindings(ctx context.Context) (map[string]Object, error) {
	return b.list(ctx, BindingPrefix)
}

// targetReads bounds the reads ListTargets has in flight.
const targetReads = 8

// ListTargets shows the target files of some apps only, as List would,
// by reading each app's two places (a GET each, a few at a time): for a
// handful of apps, far cheaper than listing a bucket of thousands.
// Bindings is nil, and LastModified is not known.
func (b *Bucket) ListTargets(ctx context.Context, appGUIDs []string) (Contents, error) {
	c := Contents{Active: map[string]Object{}, Inactive: map[string]Object{}}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(targetReads)
	for _, app := range appGUIDs {
		for _, started := range []bool{true, false} {
			key, err := TargetKey(app, started)
			if err != nil {
				return Contents{}, err
			}
			g.Go(func() error {
				_, etag, err := b.st.Get(ctx, key)
				switch {
				case errors.Is(err, ErrNotFound):
					return nil
				case err != nil:
					return fmt.Errorf("reading %s: %w", key, err)
				}
				mu.Lock()
				defer mu.Unlock()
				if started {
					c.Active[app] = Object{Key: key, ETag: etag}
				} else {
					c.Inactive[app] = Object{Key: key, ETag: etag}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return Contents{}, err
	}
	return c, nil
}

func (b *Bucket) list(ctx context.Context, prefix string) (map[string]Object, error) {
	objects, err := b.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	out := make(map[string]Object, len(objects))
	for _, o := range objects {
		if p, guid, err := ParseKey(o.Key); err == nil && p == prefix {
			out[guid] = o
		}
	}
	return out, nil
}

// TargetChange is what placing an app's target file takes, as PlanTarget
// decided it from a listing.
type TargetChange struct {
	Target Target
	// Write says the file in the target's place does not hold its bytes.
	Write bool
	// RemoveOther says there is a file in the other place, to remove after
	// the write.
	RemoveOther bool
	// cond makes the write fail if the file changed since the listing.
	cond Condition
}

// PlanTarget decides what placing t takes, given the app's files as a
// listing showed them; ok is false when the bucket already holds t and
// nothing else. The write it plans is conditional on what was listed, so
// that it does not overwrite a file written or removed since (by a bind or
// an unbind): ApplyTarget then fails with ErrPreconditionFailed, and the
// caller lists again.
func (b *Bucket) PlanTarget(t Target, listed TargetFiles) (change TargetChange, ok bool) {
	here := listed.in(t.Started)
	change = TargetChange{Target: t, RemoveOther: listed.in(!t.Started) != nil}
	switch {
	case here == nil:
		change.Write, change.cond = true, Condition{IfNoneMatch: true}
	case !b.holds(here.Key, here.ETag, t.Body):
		change.Write, change.cond = true, Condition{IfMatch: here.ETag}
	}
	return change, change.Write || change.RemoveOther
}

// ApplyTarget makes a change PlanTarget decided: the write, then the
// removal of the file in the other place. A write whose condition fails
// gives an error wrapping ErrPreconditionFailed and removes nothing.
func (b *Bucket) ApplyTarget(ctx context.Context, change TargetChange) error {
	return b.place(ctx, change, true)
}

// PutTarget places t without a listing, as a bind does: it reads the file
// in t's place and writes t there only if the bytes differ, then removes
// the file in the other place. When it returns nil, the app's only target
// file is t.
func (b *Bucket) PutTarget(ctx context.Context, t Target) error {
	key, err := TargetKey(t.AppGUID, t.Started)
	if err != nil {
		return err
	}
	current, _, err := b.st.Get(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	change := TargetChange{Target: t, Write: err != nil || !bytes.Equal(current, t.Body), RemoveOther: true}
	return b.place(ctx, change, false)
}

// place writes first and removes the other file after: whatever fails, the
// app keeps a target file. Only writes planned from a listing are
// remembered, since only a listing needs them and only a listing forgets
// them.
func (b *Bucket) place(ctx context.Context, change TargetChange, remember bool) error {
	t := change.Target
	key, err := TargetKey(t.AppGUID, t.Started)
	if err != nil {
		return err
	}
	other, _ := TargetKey(t.AppGUID, !t.Started)
	if change.Write {
		etag, err := b.st.Put(ctx, key, t.Body, change.cond)
		if err != nil {
			return err
		}
		if remember {
			b.remember(key, etag, t.Body)
		}
	}
	if change.RemoveOther {
		if err := b.st.Delete(ctx, other); err != nil {
			return err
		}
		b.forget(other)
	}
	return nil
}

// RemoveTarget removes an app's target file from one place: active/ when
// started is true, inactive/ otherwise.
func (b *Bucket) RemoveTarget(ctx context.Context, appGUID string, started bool) error {
	key, err := TargetKey(appGUID, started)
	if err != nil {
		return err
	}
	if err := b.st.Delete(ctx, key); err != nil {
		return err
	}
	b.forget(key)
	return nil
}

// RemoveTargets removes an app's target files from both places.
func (b *Bucket) RemoveTargets(ctx context.Context, appGUID string) error {
	for _, started := range []bool{true, false} {
		if err := b.RemoveTarget(ctx, appGUID, started); err != nil {
			return err
		}
	}
	return nil
}

// StoredBinding is a binding record as read, with the ETag a conditional
// write replaces it by.
type StoredBinding struct {
	Binding
	ETag string
}

// ReadBinding reads a binding record. It gives an error wrapping
// ErrNotFound when there is none, and one wrapping ErrUnreadableRecord when
// the record cannot be parsed.
func (b *Bucket) ReadBinding(ctx context.Context, bindingGUID string) (StoredBinding, error) {
	key, err := BindingKey(bindingGUID)
	if err != nil {
		return StoredBinding{}, err
	}
	record, etag, err := readRecord(ctx, b, key, UnmarshalBinding)
	return StoredBinding{Binding: record, ETag: etag}, err
}

// readRecord reads and parses the record at key: one rule for every kind
// of record, so that a missing one is ErrNotFound and one that cannot be
// parsed is ErrUnreadableRecord.
func readRecord[R any](ctx context.Context, b *Bucket, key string, unmarshal func([]byte) (R, error)) (R, string, error) {
	var none R
	data, etag, err := b.st.Get(ctx, key)
	if err != nil {
		return none, "", err
	}
	record, err := unmarshal(data)
	if err != nil {
		return none, "", fmt.Errorf("%s: %w: %w", key, ErrUnreadableRecord, err)
	}
	return record, etag, nil
}

// writeRecord writes a record's stored form at key under cond.
func (b *Bucket) writeRecord(ctx context.Context, key string, marshal func() ([]byte, error), cond Condition) (string, error) {
	data, err := marshal()
	if err != nil {
		return "", err
	}
	return b.st.Put(ctx, key, data, cond)
}

// WriteBinding writes a binding record under cond: IfNoneMatch to create
// it, IfMatch with the ETag read to replace it. A failed condition gives an
// error wrapping ErrPreconditionFailed.
func (b *Bucket) WriteBinding(ctx context.Context, record Binding, cond Condition) (etag string, err error) {
	key, err := BindingKey(record.BindingGUID)
	if err != nil {
		return "", err
	}
	return b.writeRecord(ctx, key, record.Marshal, cond)
}

// DeleteBinding removes a binding record; a missing one is not an error.
func (b *Bucket) DeleteBinding(ctx context.Context, bindingGUID string) error {
	key, err := BindingKey(bindingGUID)
	if err != nil {
		return err
	}
	return b.st.Delete(ctx, key)
}

// HasTarget reports whether the app has a target file, in either place.
func (b *Bucket) HasTarget(ctx context.Context, appGUID string) (bool, error) {
	for _, started := range []bool{true, false} {
		key, err := TargetKey(appGUID, started)
		if err != nil {
			return false, err
		}
		_, _, err = b.st.Get(ctx, key)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// StoredInstance is an instance record as read, with its ETag.
type StoredInstance struct {
	Instance
	ETag string
}

// ReadInstance reads an instance record. It gives an error wrapping
// ErrNotFound when there is none, and one wrapping ErrUnreadableRecord when
// the record cannot be parsed.
func (b *Bucket) ReadInstance(ctx context.Context, instanceGUID string) (StoredInstance, error) {
	key, err := InstanceKey(instanceGUID)
	if err != nil {
		return StoredInstance{}, err
	}
	record, etag, err := readRecord(ctx, b, key, UnmarshalInstance)
	return StoredInstance{Instance: record, ETag: etag}, err
}

// WriteInstance writes an instance record under cond (IfNoneMatch to
// create it). A failed condition gives an error wrapping
// ErrPreconditionFailed.
func (b *Bucket) WriteInstance(ctx context.Context, record Instance, cond Condition) (etag string, err error) {
	key, err := InstanceKey(record.InstanceGUID)
	if err != nil {
		return "", err
	}
	return b.writeRecord(ctx, key, record.Marshal, cond)
}

// DeleteInstance removes an instance record; a missing one is not an
// error.
func (b *Bucket) DeleteInstance(ctx context.Context, instanceGUID string) error {
	key, err := InstanceKey(instanceGUID)
	if err != nil {
		return err
	}
	return b.st.Delete(ctx, key)
}

// holds reports whether the object listed at key with etag holds body: its
// ETag is body's MD5, or it is this bucket's own last write of these bytes.
func (b *Bucket) holds(key, etag string, body []byte) bool {
	sum := ContentETag(body)
	if etag == sum {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.written[key]
	return ok && w.etag == etag && w.md5 == sum
}

// remember records a write of body to key that the store answered with
// etag. Only ETags that are not the MD5 of the content (and not empty) need
// remembering, so nothing is kept on other stores.
func (b *Bucket) remember(key, etag string, body []byte) {
	sum := ContentETag(body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if etag == "" || etag == sum {
		delete(b.written, key)
		return
	}
	if b.written == nil {
		b.written = map[string]writtenTarget{}
	}
	b.written[key] = writtenTarget{etag: etag, md5: sum}
}

func (b *Bucket) forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.written, key)
}

// forgetUnlisted drops what the bucket remembers of target files a listing
// no longer shows (an unbind removed them).
func (b *Bucket) forgetUnlisted(c Contents) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for key := range b.written {
		prefix, app, err := ParseKey(key)
		files := c.Inactive
		if prefix == ActivePrefix {
			files = c.Active
		}
		if _, ok := files[app]; err != nil || !ok {
			delete(b.written, key)
		}
	}
}
