package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// record is what a pass needs of a binding record: the app it names, when
// and by whom it was written, and the settings of its bind parameters. The
// rest of the record (its guid is the cache's key; plan, instance and raw
// parameters are the broker's) is not kept: 50,000 of them are held from
// one run to the next.
type record struct {
	AppGUID   string
	CreatedAt time.Time
	Source    string
	Settings  targets.Settings
}

func recordOf(b store.Binding, settings targets.Settings) record {
	source := b.Source
	// The sources are two constants: the decoded copies are not kept.
	switch source {
	case store.SourceBroker:
		source = store.SourceBroker
	case store.SourceReconcile:
		source = store.SourceReconcile
	}
	return record{AppGUID: b.AppGUID, CreatedAt: b.CreatedAt, Source: source, Settings: settings}
}

// recordCache keeps the binding records the reconciler read, by binding
// guid, with the ETag they were listed with. A pass reads a record only
// when its listing shows another ETag, so that a run in which nothing
// changed reads no record: it only lists.
type recordCache struct {
	mu     sync.Mutex
	byGUID map[string]*cachedRecord
}

type cachedRecord struct {
	etag   string
	record record
	// unreadable says the record could not be parsed: it names no app.
	unreadable bool
}

// readRecords returns the readable records among those listed, reading
// those it does not hold at their listed ETag, Workers at a time. A record
// removed since the listing is left out; one that cannot be parsed is left
// out and logged when it is read. The records returned are the cache's
// own, never changed once cached (a new read replaces the entry).
func (r *Reconciler) readRecords(ctx context.Context, logger lager.Logger, listed map[string]store.Object) (map[string]*record, error) {
	c := &r.records
	c.mu.Lock()
	if c.byGUID == nil {
		c.byGUID = map[string]*cachedRecord{}
	}
	var stale []string
	for guid, obj := range listed {
		if cached, ok := c.byGUID[guid]; !ok || cached.etag != obj.ETag || obj.ETag == "" {
			stale = append(stale, guid)
		}
	}
	for guid := range c.byGUID {
		if _, ok := listed[guid]; !ok {
			delete(c.byGUID, guid)
		}
	}
	c.mu.Unlock()

	if err := r.readInto(ctx, logger, stale, func(guid, _ string) string { return listed[guid].ETag }); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*record, len(listed))
	for guid := range listed {
		if cached, ok := c.byGUID[guid]; ok && !cached.unreadable {
			out[guid] = &cached.record
		}
	}
	return out, nil
}

// readSomeRecords returns the readable records among guids, read whatever
// the cache holds (without a listing, their ETags are not known), Workers
// at a time; it keeps what it read in the cache and forgets nothing else.
// A record that does not exist is left out.
func (r *Reconciler) readSomeRecords(ctx context.Context, logger lager.Logger, guids []string) (map[string]*record, error) {
	c := &r.records
	c.mu.Lock()
	if c.byGUID == nil {
		c.byGUID = map[string]*cachedRecord{}
	}
	c.mu.Unlock()
	if err := r.readInto(ctx, logger, guids, func(_, read string) string { return read }); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*record, len(guids))
	for _, guid := range guids {
		if cached, ok := c.byGUID[guid]; ok && !cached.unreadable {
			out[guid] = &cached.record
		}
	}
	return out, nil
}

// readInto reads the records of guids into the cache, Workers at a time,
// each at the ETag etag gives it from its guid and the ETag it was read
// with. A record that is gone leaves the cache.
func (r *Reconciler) readInto(ctx context.Context, logger lager.Logger, guids []string, etag func(guid, read string) string) error {
	c := &r.records
	var g errgroup.Group
	g.SetLimit(max(r.Workers, 1))
	for _, guid := range guids {
		g.Go(func() error {
			stored, err := r.bucket().ReadBinding(ctx, guid)
			entry := &cachedRecord{etag: etag(guid, stored.ETag)}
			switch {
			case errors.Is(err, store.ErrNotFound):
				// Unbound since the listing; the next pass looks again.
				c.mu.Lock()
				delete(c.byGUID, guid)
				c.mu.Unlock()
				return nil
			case errors.Is(err, store.ErrUnreadableRecord):
				logger.Error("unreadable-record", err, lager.Data{"binding_guid": guid})
				entry.unreadable = true
			case err != nil:
				return fmt.Errorf("%w: reading a record: %w", ErrReconcile, err)
			default:
				settings, err := targets.ParseParameters(stored.Parameters)
				if err != nil {
					// Written before a rule changed, or by hand: the binding
					// keeps being monitored, without settings.
					logger.Info("stored-parameters-invalid", lager.Data{"binding_guid": guid, "app_guid": stored.AppGUID})
				}
				entry.record = recordOf(stored.Binding, settings)
			}
			c.mu.Lock()
			c.byGUID[guid] = entry
			c.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
