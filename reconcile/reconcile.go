package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// CFReader is what the reconciler needs of the CF API. Both calls either
// return a complete answer or an error: a partial answer must never be
// mistaken for apps or bindings that are gone.
type CFReader interface {
	// PlanBindings lists every app binding of our plan.
	PlanBindings(ctx context.Context) ([]cfapi.Binding, error)
	// Apps describes the apps among guids that CF returns; an app missing
	// from the map is deleted or no longer visible.
	Apps(ctx context.Context, guids []string) (map[string]targets.App, error)
}

// Reconciler makes the store match the CF API: every bound app that CF
// returns has exactly one target file, in active/ or inactive/, rendered
// from its current state; nothing else has one.
type Reconciler struct {
	Store      store.Store
	CF         CFReader
	PaaSDomain string
	// Addressing is how target files name an app's instances.
	Addressing targets.Addressing
	// PlanID is written into the records of bindings adopted from the API.
	PlanID string
	// Grace protects records of binds still in flight: a record whose
	// binding the API does not list is only removed once it is older.
	Grace time.Duration
	// MaxPasses bounds how often a run re-reads the world after changing
	// it. Each pass after the first verifies the one before; a run ends
	// with the first pass that changes nothing.
	MaxPasses int
	// Workers is how many store writes run at once.
	Workers int
	Logger  lager.Logger
	Now     func() time.Time
	// Metrics, when set, is updated after every run.
	Metrics *Metrics
	// beforeApply, for tests, runs between reading and writing in each pass.
	beforeApply func(pass int)

	// written remembers, per target key, the ETag the store gave the
	// updater's last write and the MD5 of what it wrote. Where ETags are
	// not MD5s of the content (S3 with SSE-KMS), this is how a run knows
	// that a file is still what it wrote, without reading it.
	writtenMu sync.Mutex
	written   map[string]writtenTarget
}

// writtenTarget is what the updater last wrote to a key.
type writtenTarget struct {
	etag string // as the store answered the write
	md5  string // of the bytes written
}

// Result counts what a run did.
type Result struct {
	Passes          int
	Active          int
	Inactive        int
	TargetsWritten  int
	TargetsDeleted  int
	RecordsAdopted  int
	RecordsRemoved  int
	WritesConflicts int
}

func (r Result) changes() int {
	return r.TargetsWritten + r.TargetsDeleted + r.RecordsAdopted + r.RecordsRemoved + r.WritesConflicts
}

// ErrReconcile wraps every failure of a run.
var ErrReconcile = errors.New("reconcile failed")

// Run reconciles once. It changes nothing in the store unless every read of
// the CF API and of the store succeeded; a failed write makes the run fail
// after the other writes are done, leaving each app consistent.
func (r *Reconciler) Run(ctx context.Context) (Result, error) {
	start := r.now()
	logger := r.logger().Session("reconcile")
	var total Result
	var err error
	maxPasses := max(r.MaxPasses, 2)
	for pass := 1; pass <= maxPasses; pass++ {
		var res Result
		res, err = r.pass(ctx, logger.Session("pass", lager.Data{"pass": pass}), pass)
		total.Passes = pass
		total.Active, total.Inactive = res.Active, res.Inactive
		total.TargetsWritten += res.TargetsWritten
		total.TargetsDeleted += res.TargetsDeleted
		total.RecordsAdopted += res.RecordsAdopted
		total.RecordsRemoved += res.RecordsRemoved
		total.WritesConflicts += res.WritesConflicts
		if err != nil || res.changes() == 0 {
			break
		}
		if pass == maxPasses {
			logger.Info("still-changing", lager.Data{"passes": pass})
		}
	}
	if r.Metrics != nil {
		r.Metrics.observe(total, err, r.now().Sub(start), r.now())
	}
	if err != nil {
		logger.Error("failed", err, lager.Data{"passes": total.Passes})
		return total, err
	}
	logger.Info("done", lager.Data{
		"passes": total.Passes, "active": total.Active, "inactive": total.Inactive,
		"targets_written": total.TargetsWritten, "targets_deleted": total.TargetsDeleted,
		"records_adopted": total.RecordsAdopted, "records_removed": total.RecordsRemoved,
		"duration": r.now().Sub(start).String(),
	})
	return total, nil
}

// snapshot is the store as one pass read it.
type snapshot struct {
	records  map[string]store.Object // by binding guid
	active   map[string]store.Object // by app guid
	inactive map[string]store.Object // by app guid
}

func (r *Reconciler) readStore(ctx context.Context) (snapshot, error) {
	s := snapshot{}
	var err error
	if s.records, err = r.list(ctx, store.BindingPrefix); err != nil {
		return s, err
	}
	if s.active, err = r.list(ctx, store.ActivePrefix); err != nil {
		return s, err
	}
	s.inactive, err = r.list(ctx, store.InactivePrefix)
	return s, err
}

func (r *Reconciler) list(ctx context.Context, prefix string) (map[string]store.Object, error) {
	objects, err := r.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %w", ErrReconcile, prefix, err)
	}
	out := make(map[string]store.Object, len(objects))
	for _, o := range objects {
		if _, guid, err := store.ParseKey(o.Key); err == nil {
			out[guid] = o
		}
	}
	return out, nil
}

// mutation is one store change a pass decided on.
type mutation struct {
	kind    string // "write-target", "delete-target", "adopt-record", "remove-record"
	key     string
	body    []byte
	cond    store.Condition
	then    string // a key to delete once the write succeeded (the other state's file)
	logData lager.Data
}

func (r *Reconciler) pass(ctx context.Context, logger lager.Logger, pass int) (Result, error) {
	snap, err := r.readStore(ctx)
	if err != nil {
		return Result{}, err
	}
	r.forgetUnlisted(snap)
	// CF is read after the store, so that an app or binding missing from
	// CF's answer is missing at a time after the store showed it.
	apiBindings, err := r.CF.PlanBindings(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("%w: listing bindings in the CF API: %w", ErrReconcile, err)
	}
	live := map[string]cfapi.Binding{}
	deleting := map[string]bool{}
	for _, b := range apiBindings {
		if !scrape.ValidGUID(b.GUID) || !scrape.ValidGUID(b.AppGUID) {
			continue
		}
		if b.Deleting {
			deleting[b.GUID] = true
			continue
		}
		live[b.GUID] = b
	}

	var muts []mutation
	monitored := map[string]bool{}
	now := r.now()
	for bindingGUID, obj := range snap.records {
		switch {
		case live[bindingGUID].GUID != "":
			monitored[live[bindingGUID].AppGUID] = true
		case deleting[bindingGUID]:
			// Cloud Controller is unbinding it: the broker removes the
			// record and decides about the target file.
		case now.Sub(obj.LastModified) > r.grace():
			muts = append(muts, mutation{kind: "remove-record", key: obj.Key,
				logData: lager.Data{"binding_guid": bindingGUID}})
		default:
			// Young and unknown to the API: a bind in flight, whose record
			// is the only way to know its app. A record this updater adopted
			// from the API is no such thing: its binding is gone.
			b, err := r.readRecord(ctx, obj.Key)
			switch {
			case errors.Is(err, store.ErrNotFound):
				continue // unbound since the listing; the next pass looks again
			case errors.Is(err, errUnreadableRecord):
				// It names no app we could monitor; it goes once it is old.
				logger.Error("unreadable-record", err, lager.Data{"binding_guid": bindingGUID})
				continue
			case err != nil:
				return Result{}, err
			}
			if b.Source == store.SourceReconcile {
				muts = append(muts, mutation{kind: "remove-record", key: obj.Key,
					logData: lager.Data{"binding_guid": bindingGUID, "reason": "adopted-binding-gone"}})
				continue
			}
			monitored[b.AppGUID] = true
		}
	}
	for bindingGUID, b := range live {
		monitored[b.AppGUID] = true
		if _, ok := snap.records[bindingGUID]; ok {
			continue
		}
		key, _ := store.BindingKey(bindingGUID)
		body, err := store.Binding{BindingGUID: bindingGUID, AppGUID: b.AppGUID, PlanID: r.PlanID,
			CreatedAt: b.CreatedAt, Source: store.SourceReconcile}.Marshal()
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrReconcile, err)
		}
		muts = append(muts, mutation{kind: "adopt-record", key: key, body: body, cond: store.Condition{IfNoneMatch: true},
			logData: lager.Data{"binding_guid": bindingGUID, "app_guid": b.AppGUID}})
	}

	guids := make([]string, 0, len(monitored))
	for g := range monitored {
		guids = append(guids, g)
	}
	sort.Strings(guids)
	apps, err := r.CF.Apps(ctx, guids)
	if err != nil {
		return Result{}, fmt.Errorf("%w: reading apps from the CF API: %w", ErrReconcile, err)
	}

	res := Result{}
	for _, guid := range guids {
		app, ok := apps[guid]
		if !ok {
			continue // deleted or no longer visible: its files go below
		}
		want, other := snap.active, snap.inactive
		if app.Started() {
			res.Active++
		} else {
			want, other = snap.inactive, snap.active
			res.Inactive++
		}
		key, _ := store.TargetKey(guid, app.Started())
		otherKey, _ := store.TargetKey(guid, !app.Started())
		body := targets.Render(app, r.PaaSDomain, r.Addressing)
		m := mutation{kind: "write-target", key: key, body: body,
			logData: lager.Data{"app_guid": guid, "key": key}}
		if _, ok := other[guid]; ok {
			m.then = otherKey
		}
		switch existing, ok := want[guid]; {
		case ok && r.unchanged(key, existing.ETag, body):
			if m.then != "" {
				muts = append(muts, mutation{kind: "delete-target", key: otherKey, logData: lager.Data{"app_guid": guid, "key": otherKey}})
			}
		case ok:
			m.cond = store.Condition{IfMatch: existing.ETag}
			muts = append(muts, m)
		default:
			m.cond = store.Condition{IfNoneMatch: true}
			muts = append(muts, m)
		}
	}
	for _, files := range []map[string]store.Object{snap.active, snap.inactive} {
		for guid, obj := range files {
			if _, ok := apps[guid]; ok && monitored[guid] {
				continue
			}
			muts = append(muts, mutation{kind: "delete-target", key: obj.Key,
				logData: lager.Data{"app_guid": guid, "key": obj.Key, "reason": reasonGone(monitored[guid])}})
		}
	}

	if r.beforeApply != nil {
		r.beforeApply(pass)
	}
	applied, err := r.apply(ctx, logger, muts)
	res.TargetsWritten, res.TargetsDeleted = applied["write-target"], applied["delete-target"]
	res.RecordsAdopted, res.RecordsRemoved = applied["adopt-record"], applied["remove-record"]
	res.WritesConflicts = applied["conflict"]
	return res, err
}

func reasonGone(monitored bool) string {
	if monitored {
		return "app-not-returned-by-cf"
	}
	return "app-not-bound"
}

func (r *Reconciler) readRecord(ctx context.Context, key string) (store.Binding, error) {
	data, _, err := r.Store.Get(ctx, key)
	if err != nil {
		return store.Binding{}, fmt.Errorf("%w: reading %s: %w", ErrReconcile, key, err)
	}
	b, err := store.UnmarshalBinding(data)
	if err != nil {
		return store.Binding{}, fmt.Errorf("%w: %s: %w: %w", ErrReconcile, key, errUnreadableRecord, err)
	}
	return b, nil
}

var errUnreadableRecord = errors.New("unreadable binding record")

// apply runs the mutations with bounded concurrency and counts them by kind.
// A conditional write that fails its condition is counted as "conflict":
// someone else changed the object, and the next pass looks again.
func (r *Reconciler) apply(ctx context.Context, logger lager.Logger, muts []mutation) (map[string]int, error) {
	counts := map[string]int{}
	var mu sync.Mutex
	var errs []error
	work := make(chan mutation)
	var wg sync.WaitGroup
	for range max(r.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				kind, err := r.applyOne(ctx, m)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					logger.Error(m.kind+"-failed", err, m.logData)
				} else {
					counts[kind]++
					logger.Debug(kind, m.logData)
				}
				mu.Unlock()
			}
		}()
	}
	for _, m := range muts {
		work <- m
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return counts, fmt.Errorf("%w: %d of %d store changes failed, first: %w", ErrReconcile, len(errs), len(muts), errs[0])
	}
	return counts, nil
}

func (r *Reconciler) applyOne(ctx context.Context, m mutation) (string, error) {
	switch m.kind {
	case "write-target", "adopt-record":
		etag, err := r.Store.Put(ctx, m.key, m.body, m.cond)
		if err != nil {
			if errors.Is(err, store.ErrPreconditionFailed) {
				return "conflict", nil
			}
			return "", err
		}
		if m.kind == "write-target" {
			r.remember(m.key, etag, m.body)
		}
		if m.then != "" {
			if err := r.Store.Delete(ctx, m.then); err != nil {
				return "", err
			}
		}
		return m.kind, nil
	default:
		return m.kind, r.Store.Delete(ctx, m.key)
	}
}

// unchanged reports whether the object at key, listed with etag, holds
// body: its ETag is body's MD5, or it is the updater's own last write of
// these bytes.
func (r *Reconciler) unchanged(key, etag string, body []byte) bool {
	sum := store.ContentETag(body)
	if etag == sum {
		return true
	}
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	w, ok := r.written[key]
	return ok && w.etag == etag && w.md5 == sum
}

// forgetUnlisted drops what the updater remembers of targets that are no
// longer in the store (an unbind removed them), so that the memory holds at
// most one entry per target file.
func (r *Reconciler) forgetUnlisted(snap snapshot) {
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	for key := range r.written {
		prefix, app, err := store.ParseKey(key)
		files := snap.inactive
		if prefix == store.ActivePrefix {
			files = snap.active
		}
		if _, ok := files[app]; err != nil || !ok {
			delete(r.written, key)
		}
	}
}

// remember records the updater's write of body to key with the store's
// etag. Only ETags that are not the MD5 of the content (and not empty)
// need remembering, so the map stays empty on other stores; entries for
// files that are gone are dropped by forgetUnlisted at the next pass.
func (r *Reconciler) remember(key, etag string, body []byte) {
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	if etag == "" || etag == store.ContentETag(body) {
		delete(r.written, key)
		return
	}
	if r.written == nil {
		r.written = map[string]writtenTarget{}
	}
	r.written[key] = writtenTarget{etag: etag, md5: store.ContentETag(body)}
}

func (r *Reconciler) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return 10 * time.Minute
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) logger() lager.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return lager.NewLogger("reconcile")
}
