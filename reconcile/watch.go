package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/alphagov/cf-app-discovery/cfapi"
)

// WatchCF is what the watch needs of the CF API.
type WatchCF interface {
	// AuditEvents lists the events of types created at or after since
	// (whole seconds), oldest first.
	AuditEvents(ctx context.Context, since time.Time, types []string) ([]cfapi.AuditEvent, error)
	// ActiveDeployments lists the deployments still running.
	ActiveDeployments(ctx context.Context) ([]cfapi.Deployment, error)
	// Now is the CF API's clock.
	Now(ctx context.Context) (time.Time, error)
}

// AppsRefresher brings the target files of some apps up to date with the
// code of a full reconcile, for those apps only.
type AppsRefresher interface {
	// RunApps refreshes the bound apps among appGUIDs (an unbound one
	// costs no look-up) and returns how many that was. It changes nothing
	// unless every read succeeded.
	RunApps(ctx context.Context, appGUIDs []string) (refreshed int, err error)
}

// WatchedEventTypes are the audit events after which an app's target file
// may change. Their target is the app.
var WatchedEventTypes = []string{
	"audit.app.start", "audit.app.stop", "audit.app.restart", "audit.app.update",
	"audit.app.delete-request", "audit.app.apply_manifest",
	"audit.app.process.scale", "audit.app.process.update", "audit.app.process.create", "audit.app.process.delete",
	"audit.app.map-route", "audit.app.unmap-route",
	"audit.app.deployment.create", "audit.app.deployment.cancel", "audit.app.deployment.continue",
}

// deploymentEventTypes start, restart or end a deployment: after one, the
// watch lists the running deployments.
var deploymentEventTypes = []string{"audit.app.deployment.create", "audit.app.deployment.cancel", "audit.app.deployment.continue"}

const (
	// defaultSettle is how far behind the CF API's clock the cursor stays:
	// an event can become visible a little after its created_at (its
	// transaction commits later, API servers' clocks differ, the clock is
	// known to the second). Events inside it are read again and dropped by
	// guid; it costs no freshness.
	defaultSettle = 10 * time.Second
	// defaultDeploymentsEvery bounds how long a deployment the watch heard
	// no event of (its app was bound after it started) goes unseen.
	defaultDeploymentsEvery = time.Minute
	// defaultWatchTimeout bounds one watch, so that a hung CF API delays
	// the next watch, not every later one.
	defaultWatchTimeout = time.Minute
)

// Watch follows the CF API between full reconciles (docs/design.md,
// "Watch"): each Run reads the audit events since its cursor and, when a
// deployment may be running, the active deployments, and refreshes the
// apps they name. A Run that fails changes nothing: its events are read
// again by the next.
type Watch struct {
	CF   WatchCF
	Apps AppsRefresher
	// Settle, DeploymentsEvery and Timeout default to 10s, 1m and 1m.
	Settle           time.Duration
	DeploymentsEvery time.Duration
	Timeout          time.Duration
	Logger           lager.Logger
	// Metrics, when set, is updated by every Run.
	Metrics *WatchMetrics
	// Now is the local clock; time.Now when nil.
	Now func() time.Time

	mu sync.Mutex
	// begun is set once the cursor has been placed by the CF API's clock.
	begun bool
	// cursor is the created_at (CF API clock) from which events are read.
	cursor time.Time
	// skew is the CF API's clock minus the local one.
	skew time.Duration
	// handled holds the guids of events at or after the cursor's second
	// whose apps were written, with their created_at.
	handled map[string]time.Time
	// unwritten holds the events a failed Run saw and could not write.
	unwritten map[string]time.Time
	// deploying holds the apps whose deployment was running at the last
	// successful Run that listed deployments.
	deploying map[string]bool
	// deploymentsListed is when (local clock) deployments were last listed.
	deploymentsListed time.Time
}

// WatchResult is what one Run did.
type WatchResult struct {
	// Events is how many events the Run saw for the first time.
	Events int
	// Deployments is how many running deployments it saw (-1: not listed).
	Deployments int
	// Refreshed is how many bound apps it refreshed.
	Refreshed int
}

// Begin places the cursor at the CF API's clock now, less the settling
// time. The updater calls it just before its first full reconcile, so that
// watching starts where that reconcile's reads started.
func (w *Watch) Begin(ctx context.Context) error {
	local := w.now()
	cfNow, err := w.CF.Now(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading the CF API's clock: %w", ErrWatch, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.skew = cfNow.Sub(local)
	w.cursor = cfNow.Add(-w.settle())
	w.begun = true
	w.handled = map[string]time.Time{}
	w.unwritten = map[string]time.Time{}
	w.deploying = map[string]bool{}
	w.deploymentsListed = time.Time{}
	return nil
}

// ErrWatch wraps every failure of a watch.
var ErrWatch = errors.New("watch failed")

// Run watches once. It is not safe to call concurrently with itself.
func (w *Watch) Run(ctx context.Context) (WatchResult, error) {
	logger := w.logger().Session("watch")
	res, err := w.run(ctx, logger)
	if w.Metrics != nil {
		w.Metrics.observe(res, err)
	}
	if err != nil {
		logger.Error("failed", err)
		return res, err
	}
	if res.Events > 0 || res.Refreshed > 0 {
		logger.Info("done", lager.Data{"events": res.Events, "deployments": res.Deployments, "refreshed": res.Refreshed})
	}
	return res, nil
}

func (w *Watch) run(ctx context.Context, logger lager.Logger) (WatchResult, error) {
	res := WatchResult{Deployments: -1}
	w.mu.Lock()
	begun := w.begun
	w.mu.Unlock()
	if !begun {
		if err := w.Begin(ctx); err != nil {
			return res, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout())
	defer cancel()

	w.mu.Lock()
	since, local := w.cursor, w.now()
	cfNow := local.Add(w.skew)
	w.mu.Unlock()
	events, err := w.CF.AuditEvents(ctx, since, WatchedEventTypes)
	if err != nil {
		return res, fmt.Errorf("%w: listing audit events: %w", ErrWatch, err)
	}

	w.mu.Lock()
	var fresh []cfapi.AuditEvent
	for _, e := range events {
		if _, done := w.handled[e.GUID]; !done {
			fresh = append(fresh, e)
		}
	}
	listDeployments := len(w.deploying) > 0 || w.deploymentsListed.IsZero() ||
		local.Sub(w.deploymentsListed) >= w.deploymentsEvery()
	for _, e := range fresh {
		listDeployments = listDeployments || slices.Contains(deploymentEventTypes, e.Type)
	}
	previouslyDeploying := w.deploying
	w.mu.Unlock()
	res.Events = len(fresh)

	apps := map[string]bool{}
	for _, e := range fresh {
		apps[e.TargetGUID] = true
	}
	var deploying map[string]bool
	if listDeployments {
		deployments, err := w.CF.ActiveDeployments(ctx)
		if err != nil {
			w.remember(fresh)
			return res, fmt.Errorf("%w: listing deployments: %w", ErrWatch, err)
		}
		res.Deployments = len(deployments)
		deploying = map[string]bool{}
		for _, d := range deployments {
			deploying[d.AppGUID] = true
		}
		// Apps deploying now, and once more those whose deployment ended
		// since: the end writes no event.
		for app := range deploying {
			apps[app] = true
		}
		for app := range previouslyDeploying {
			apps[app] = true
		}
	}

	if len(apps) > 0 {
		guids := make([]string, 0, len(apps))
		for g := range apps {
			guids = append(guids, g)
		}
		slices.Sort(guids)
		res.Refreshed, err = w.Apps.RunApps(ctx, guids)
		if err != nil {
			w.remember(fresh)
			return res, fmt.Errorf("%w: refreshing %d apps: %w", ErrWatch, len(guids), err)
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range fresh {
		w.handled[e.GUID] = e.CreatedAt
	}
	w.unwritten = map[string]time.Time{}
	if listDeployments {
		w.deploying, w.deploymentsListed = deploying, local
	}
	// Every event up to now has been read, less those not yet visible:
	// the cursor moves to the settling time behind the clock, never back.
	if next := cfNow.Add(-w.settle()); next.After(w.cursor) {
		w.cursor = next
	}
	floor := w.cursor.Truncate(time.Second)
	for guid, created := range w.handled {
		if created.Before(floor) {
			delete(w.handled, guid)
		}
	}
	logger.Debug("cursor", lager.Data{"cursor": w.cursor, "handled": len(w.handled)})
	return res, nil
}

// remember keeps the events a failed Run could not write, for the age of
// the oldest change not yet written.
func (w *Watch) remember(events []cfapi.AuditEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range events {
		w.unwritten[e.GUID] = e.CreatedAt
	}
}

// CursorLag is how far the cursor is behind the CF API's clock.
func (w *Watch) CursorLag() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.begun {
		return 0
	}
	return w.now().Add(w.skew).Sub(w.cursor)
}

// OldestUnwritten is the age, by the CF API's clock, of the oldest event a
// watch saw and has not written yet; 0 when there is none.
func (w *Watch) OldestUnwritten() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var oldest time.Time
	for _, created := range w.unwritten {
		if oldest.IsZero() || created.Before(oldest) {
			oldest = created
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return max(w.now().Add(w.skew).Sub(oldest), 0)
}

func (w *Watch) settle() time.Duration {
	if w.Settle > 0 {
		return w.Settle
	}
	return defaultSettle
}

func (w *Watch) deploymentsEvery() time.Duration {
	if w.DeploymentsEvery > 0 {
		return w.DeploymentsEvery
	}
	return defaultDeploymentsEvery
}

func (w *Watch) timeout() time.Duration {
	if w.Timeout > 0 {
		return w.Timeout
	}
	return defaultWatchTimeout
}

func (w *Watch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Watch) logger() lager.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return lager.NewLogger("watch")
}
