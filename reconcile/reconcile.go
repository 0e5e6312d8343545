package reconcile

import (
	"context"
	"errors"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/cfapi"
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
	// beforeApply, for tests, runs between reading and writing in each
	// pass (planning, which depends on the reads alone, goes with the
	// writes).
	beforeApply func(pass int)
	// onRender, for tests, is called with each app whose target file a
	// pass renders.
	onRender func(appGUID string)

	// bucket is made from Store at first use and kept, because it
	// remembers the updater's writes from one run to the next.
	bucketOnce sync.Once
	bkt        *store.Bucket
	// records are the binding records read so far, kept from one run to
	// the next.
	records recordCache
	// rendered says which target files hold what they would be rendered
	// from, kept from one run to the next.
	rendered renderedTargets
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
	// Bound is how many of the apps the run was for are bound (in its
	// first pass).
	Bound int
	// notes are what the last pass left out of target files: invalid
	// settings and conflicts between bindings.
	notes []note
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
	total, err := r.passes(ctx, logger, nil)
	logNotes(logger, total.notes)
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

// passes runs passes over the apps of subset (every app when nil) until
// one changes nothing: each pass after the first verifies the one before,
// so that a bind or unbind made meanwhile is not undone.
func (r *Reconciler) passes(ctx context.Context, logger lager.Logger, subset []string) (Result, error) {
	var total Result
	var err error
	maxPasses := max(r.MaxPasses, 2)
	var earlier *looked
	for pass := 1; pass <= maxPasses; pass++ {
		var res Result
		res, earlier, err = r.pass(ctx, logger.Session("pass", lager.Data{"pass": pass}), pass, subset, earlier)
		if pass == 1 {
			total.Bound = res.Bound
		}
		total.Passes = pass
		total.Active, total.Inactive = res.Active, res.Inactive
		total.TargetsWritten += res.TargetsWritten
		total.TargetsDeleted += res.TargetsDeleted
		total.RecordsAdopted += res.RecordsAdopted
		total.RecordsRemoved += res.RecordsRemoved
		total.WritesConflicts += res.WritesConflicts
		total.notes = res.notes
		if err != nil || res.changes() == 0 {
			break
		}
		if pass == maxPasses {
			logger.Info("still-changing", lager.Data{"passes": pass})
		}
	}
	return total, err
}

// pass reads the store and CF, plans the changes from what it read alone,
// and applies them, for the apps of subset (every app when nil). It
// returns what it looked up, for the pass that verifies it: the rest of
// what it read is dropped before that pass reads again.
func (r *Reconciler) pass(ctx context.Context, logger lager.Logger, pass int, subset []string, earlier *looked) (Result, *looked, error) {
	w, err := r.read(ctx, logger, subset, earlier)
	if err != nil {
		return Result{}, nil, err
	}
	guids := subset
	if subset == nil {
		guids = w.apps()
	}
	if r.beforeApply != nil {
		r.beforeApply(pass)
	}
	var p plan
	applied, err := r.apply(ctx, logger, func(apply func(change)) { p = r.plan(w, guids, apply) })
	// A copy: a pointer into w would keep all of it.
	lookedUp := w.looked
	return Result{
		Active: p.active, Inactive: p.inactive,
		TargetsWritten: applied[kindWriteTarget], TargetsDeleted: applied[kindDeleteTarget],
		RecordsAdopted: applied[kindAdoptRecord], RecordsRemoved: applied[kindRemoveRecord],
		WritesConflicts: applied[kindConflict], Bound: w.boundAmong(guids),
		notes: p.notes,
	}, &lookedUp, err
}

func (r *Reconciler) bucket() *store.Bucket {
	r.bucketOnce.Do(func() { r.bkt = store.NewBucket(r.Store) })
	return r.bkt
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
