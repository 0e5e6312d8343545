package httpsd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/store"
)

// Store is what a View reads from the bucket; store.Store satisfies it.
type Store interface {
	// List returns the objects under prefix with their ETags.
	List(ctx context.Context, prefix string) ([]store.Object, error)
	// Get returns an object's content and ETag, or an error wrapping
	// store.ErrNotFound.
	Get(ctx context.Context, key string) (body []byte, etag string, err error)
}

// ViewOptions configures NewView.
type ViewOptions struct {
	// Store is the bucket the view reads active/ from. Required.
	Store Store
	// Logger receives the refresh failures and the malformed files
	// (default: a logger that writes nowhere).
	Logger lager.Logger
	// Registerer, when set, gets the view's metrics.
	Registerer prometheus.Registerer
	// Readers bounds the objects read at once by a refresh (default 16).
	Readers int
	// Now is the view's clock (default time.Now).
	Now func() time.Time
}

const defaultReaders = 16

// View holds the target groups of every active/ target file, refreshed
// from the bucket by Refresh. Its methods are safe for concurrent use.
type View struct {
	store   Store
	logger  lager.Logger
	readers int
	now     func() time.Time
	metrics *viewMetrics
	created time.Time

	// refreshing serialises refreshes; it guards files.
	refreshing sync.Mutex
	// files are the target files read so far, by key.
	files map[string]file

	current atomic.Pointer[snapshot]
	// lastRead is when a refresh last listed active/ and read every object
	// that had changed (Unix nanoseconds); 0 until the first time.
	lastRead atomic.Int64
}

// file is one target file as the view last read it. A malformed file has
// no groups, and its ETag is kept so that it is not read again until it
// changes.
type file struct {
	etag   string
	groups []group
}

// NewView returns a view that has not read the bucket yet: Current reports
// it not ready (503) until a Refresh succeeds.
func NewView(o ViewOptions) *View {
	v := &View{store: o.Store, logger: o.Logger, readers: o.Readers, now: o.Now, files: map[string]file{}}
	if v.logger == nil {
		v.logger = lager.NewLogger("httpsd")
	}
	v.logger = v.logger.Session("httpsd-view")
	if v.readers <= 0 {
		v.readers = defaultReaders
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.created = v.now()
	v.current.Store(newSnapshot(nil))
	v.metrics = newViewMetrics(o.Registerer, func() float64 { return v.age().Seconds() })
	return v
}

// Run refreshes the view now and then interval after the end of each
// refresh, until ctx is done: a slow bucket gets fewer requests, never
// overlapping ones.
func (v *View) Run(ctx context.Context, interval time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		_ = v.Refresh(ctx) // logged and counted by Refresh
		timer.Reset(interval)
	}
}

// Refresh lists active/ and reads the objects that are new or whose ETag
// changed; files no longer listed leave the view. It never empties the
// view because of a failure: when the listing fails nothing changes, and
// when an object cannot be read the view keeps that object's previous
// version (a new object waits for the next refresh). Such a refresh
// returns an error and does not reset the view's age. A malformed target
// file is left out, logged and counted; the rest is served.
func (v *View) Refresh(ctx context.Context) error {
	v.refreshing.Lock()
	defer v.refreshing.Unlock()
	start := time.Now()
	defer func() { v.metrics.refreshDuration.Observe(time.Since(start).Seconds()) }()

	objects, err := v.store.List(ctx, store.ActivePrefix)
	if err != nil {
		v.metrics.refreshErrors.WithLabelValues(stepList).Inc()
		v.logger.Error("list-active-failed", err)
		return fmt.Errorf("http_sd view: listing %s: %w", store.ActivePrefix, err)
	}
	next := make(map[string]file, len(objects))
	var changed []string
	for _, o := range objects {
		if f, ok := v.files[o.Key]; ok && f.etag == o.ETag {
			next[o.Key] = f
		} else {
			changed = append(changed, o.Key)
		}
	}
	reads := v.read(ctx, changed)
	var failed []string
	var firstErr error
	for i, key := range changed {
		r := reads[i]
		switch {
		case errors.Is(r.err, store.ErrNotFound):
			// Deleted since it was listed: gone from the view.
		case r.err != nil:
			failed = append(failed, key)
			if firstErr == nil {
				firstErr = r.err
			}
			if f, ok := v.files[key]; ok {
				next[key] = f
			}
		default:
			next[key] = v.parse(key, r.body, r.etag)
		}
	}
	dropped := false
	for key := range v.files {
		if _, ok := next[key]; !ok {
			dropped = true
			break
		}
	}
	v.files = next
	if len(changed) > 0 || dropped {
		s := newSnapshot(next)
		v.current.Store(s)
		v.metrics.groups.Set(float64(len(s.groups)))
	}
	if len(failed) > 0 {
		v.metrics.refreshErrors.WithLabelValues(stepRead).Inc()
		v.logger.Error("read-target-files-failed", firstErr, lager.Data{"failed": len(failed), "first_key": failed[0]})
		return fmt.Errorf("http_sd view: reading %d changed target files, %s first: %w", len(failed), failed[0], firstErr)
	}
	if v.lastRead.Swap(v.now().UnixNano()) == 0 {
		v.logger.Info("ready", lager.Data{"files": len(next), "groups": len(v.current.Load().groups)})
	}
	v.logger.Debug("refreshed", lager.Data{"files": len(next), "read": len(changed), "took_ms": time.Since(start).Milliseconds()})
	return nil
}

type readResult struct {
	body []byte
	etag string
	err  error
}

// read gets keys, at most v.readers at a time.
func (v *View) read(ctx context.Context, keys []string) []readResult {
	results := make([]readResult, len(keys))
	var g errgroup.Group
	g.SetLimit(v.readers)
	for i, key := range keys {
		g.Go(func() error {
			body, etag, err := v.store.Get(ctx, key)
			results[i] = readResult{body: body, etag: etag, err: err}
			return nil
		})
	}
	_ = g.Wait() // every read returns nil; errors are in results
	return results
}

// parse turns a target file into the view's file, leaving a malformed one
// without groups.
func (v *View) parse(key string, body []byte, etag string) file {
	groups, err := parseTargetFile(body)
	if err != nil {
		v.metrics.malformed.Inc()
		v.logger.Error("malformed-target-file", err, lager.Data{"key": key})
		return file{etag: etag}
	}
	return file{etag: etag, groups: groups}
}

// latest returns the view's answer and its age: the time since a refresh
// last read the bucket completely. ready is false until that first
// happens.
func (v *View) latest() (s *snapshot, age time.Duration, ready bool) {
	if v.lastRead.Load() == 0 {
		return nil, 0, false
	}
	return v.current.Load(), v.age(), true
}

// age is the time since the last complete refresh, or since the view was
// made when there has been none.
func (v *View) age() time.Duration {
	last := v.created
	if n := v.lastRead.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	return max(v.now().Sub(last), 0)
}

// sortedKeys returns the keys of files in order, so that equal views give
// equal answers.
func sortedKeys(files map[string]file) []string {
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
