// Package lease lets several target updaters run while exactly one of them
// reconciles: the holder of a lease kept as one object in the bucket,
// store.LeaseKey. docs/design.md ("The updater's lease") explains the rules
// and why clock skew between instances cannot give two holders.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/alphagov/cf-app-discovery/store"
)

// Store is what the lease needs of the bucket.
type Store interface {
	Get(ctx context.Context, key string) (body []byte, etag string, err error)
	Put(ctx context.Context, key string, body []byte, cond store.Condition) (etag string, err error)
}

// Record is the lease object's content. Its times are the holder's wall
// clock, for people to read: no instance decides on another's clock.
type Record struct {
	Holder     string    `json:"holder"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Duration is the holder's lease period; an instance waits for the
	// longer of its own and this before taking the lease over.
	Duration string `json:"duration"`
	// Writes numbers the holder's writes, so that no two writes of the
	// lease have the same bytes, hence the same ETag: an ETag that has not
	// changed means nobody wrote.
	Writes int64 `json:"writes"`
	// Released says the holder stopped and wrote this last: the lease may be
	// taken at once.
	Released bool `json:"released,omitempty"`
}

var (
	// ErrNotHeld is returned by Renew when this instance holds no lease.
	ErrNotHeld = errors.New("lease not held")
	// ErrLost is returned by Renew when another instance took the lease.
	ErrLost = errors.New("lease taken by another instance")
)

// Options configure a Lease.
type Options struct {
	Store Store
	// Holder names this instance in the record, logs and metrics. It must be
	// unique among the instances and across restarts: NewHolderID makes one.
	Holder string
	// Duration is the lease period (LEASE_DURATION).
	Duration time.Duration
	Logger   lager.Logger
	// Metrics, when set, shows the lease period, the holder and the changes.
	Metrics *Metrics
	// Clock measures time on this instance: deadlines and how long the
	// lease object has stayed the same. Only differences of its readings
	// are used (time.Now's are monotonic). time.Now when nil.
	Clock func() time.Time
	// WallClock dates the record. time.Now when nil.
	WallClock func() time.Time
}

// Lease is this instance's view of the lease: whether it holds it and until
// when, or what it has seen of another holder. Its methods are not safe for
// concurrent use; Run calls them from one goroutine.
type Lease struct {
	o      Options
	logger lager.Logger

	// Holding: the ETag and record of our last confirmed write, and the
	// local time until which we may act on it.
	held     bool
	etag     string
	record   Record
	deadline time.Time
	renewBy  time.Time

	// Standing by: the ETag of the object as first seen, when, and how
	// long it must stay unchanged before we take it over.
	seenETag  string
	seenSince time.Time
	seenWait  time.Duration
	seenBy    string

	writes int64
}

// New returns a lease that is not held.
func New(o Options) (*Lease, error) {
	if o.Store == nil || o.Holder == "" || o.Duration <= 0 {
		return nil, errors.New("lease: a store, a holder and a positive duration are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.WallClock == nil {
		o.WallClock = time.Now
	}
	if o.Logger == nil {
		o.Logger = lager.NewLogger("lease")
	}
	l := &Lease{o: o, logger: o.Logger.Session("lease", lager.Data{"holder": o.Holder, "duration": o.Duration.String()})}
	l.o.Metrics.setDuration(o.Duration)
	return l, nil
}

// The holder's timings, as fractions of the lease period D. It renews
// after D/3 and stops acting 2D/3 after the start of its last confirmed
// write; nobody takes the lease over before it has stayed unchanged for D.
// The D/3 in between covers writes still in flight at the deadline and
// the drift of clocks' rates (not their settings, which are never
// compared).
func (l *Lease) renewAfter() time.Duration { return l.o.Duration / 3 }
func (l *Lease) holdFor() time.Duration    { return 2 * l.o.Duration / 3 }

// PollInterval is how often a standby instance reads the lease, and how
// often a holder whose renewal failed tries again.
func (l *Lease) PollInterval() time.Duration { return l.o.Duration / 4 }

// Held reports whether this instance holds the lease now, by its clock.
func (l *Lease) Held() bool {
	return l.held && l.o.Clock().Before(l.deadline)
}

// Deadline is the time, on Clock, at which this instance must have stopped
// acting as holder unless it renews first; zero when it does not hold the
// lease.
func (l *Lease) Deadline() time.Time {
	if !l.held {
		return time.Time{}
	}
	return l.deadline
}

// RenewBy is the time, on Clock, at which the holder should renew.
func (l *Lease) RenewBy() time.Time {
	return l.renewBy
}

// TryAcquire makes one attempt to take the lease and reports whether this
// instance holds it afterwards. It takes the lease when there is none, when
// its holder released it, when the record is this instance's own (written by
// a write whose answer was lost, or left at its deadline), and when the
// object has not changed for a whole lease period as measured on Clock since
// this instance first saw it. Every write is conditional, so of several
// instances trying at once at most one succeeds.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	if l.Held() {
		return true, nil
	}
	l.Expire()
	body, etag, err := l.o.Store.Get(ctx, store.LeaseKey)
	seenAt := l.o.Clock()
	if errors.Is(err, store.ErrNotFound) {
		return l.take(ctx, store.Condition{IfNoneMatch: true}, "no-lease")
	}
	if err != nil {
		return false, fmt.Errorf("lease: reading: %w", err)
	}
	rec, perr := parse(body)
	switch {
	case perr == nil && rec.Holder == l.o.Holder:
		return l.take(ctx, store.Condition{IfMatch: etag}, "own-record")
	case perr == nil && rec.Released:
		return l.take(ctx, store.Condition{IfMatch: etag}, "released")
	}
	if etag != l.seenETag {
		// A new write: whatever we saw before has been renewed or replaced.
		// Its writer's deadline is before now, so waiting a lease period from
		// now outlasts it.
		l.seenETag, l.seenSince, l.seenWait = etag, seenAt, max(l.o.Duration, rec.duration())
		l.seenBy = rec.Holder
		l.o.Metrics.setHolder(rec.Holder)
		l.logger.Debug("lease-held-elsewhere", lager.Data{"by": rec.Holder, "expires_at": rec.ExpiresAt})
		return false, nil
	}
	if seenAt.Sub(l.seenSince) < l.seenWait {
		return false, nil
	}
	return l.take(ctx, store.Condition{IfMatch: etag}, "expired")
}

// take writes a new term's record under cond.
func (l *Lease) take(ctx context.Context, cond store.Condition, reason string) (bool, error) {
	now := l.o.WallClock().UTC()
	rec := Record{Holder: l.o.Holder, AcquiredAt: now}
	ok, err := l.write(ctx, rec, cond)
	if err != nil || !ok {
		if err == nil {
			l.logger.Debug("lease-taken-meanwhile", lager.Data{"reason": reason})
		}
		return false, err
	}
	l.logger.Info("lease-acquired", lager.Data{"reason": reason, "previous_holder": l.seenBy, "expires_at": l.record.ExpiresAt})
	l.o.Metrics.event("acquired")
	l.seenETag, l.seenBy = "", ""
	return true, nil
}

// Renew extends the lease this instance holds. It returns ErrNotHeld when it
// holds none (its deadline passed: TryAcquire starts a new term), ErrLost
// when another instance has taken it, and the store's error when the write
// failed, in which case the lease is still held until Deadline.
func (l *Lease) Renew(ctx context.Context) error {
	if !l.Held() {
		return ErrNotHeld
	}
	ok, err := l.write(ctx, l.record, store.Condition{IfMatch: l.etag})
	if err != nil {
		l.o.Metrics.event("renew_failed")
		l.logger.Error("lease-renew-failed", err, lager.Data{"deadline_in": l.deadline.Sub(l.o.Clock()).String()})
		return err
	}
	if !ok {
		// Our last write may have succeeded without our hearing of it: the
		// object is then still ours, with an ETag we did not see.
		body, etag, gerr := l.o.Store.Get(ctx, store.LeaseKey)
		if rec, perr := parse(body); gerr == nil && perr == nil && rec.Holder == l.o.Holder {
			l.etag, l.record = etag, rec
			if ok, err = l.write(ctx, rec, store.Condition{IfMatch: etag}); err != nil {
				l.o.Metrics.event("renew_failed")
				return err
			}
		}
	}
	if !ok {
		l.lose()
		return ErrLost
	}
	l.o.Metrics.event("renewed")
	l.logger.Debug("lease-renewed", lager.Data{"expires_at": l.record.ExpiresAt})
	return nil
}

// lose forgets a lease another instance has taken.
func (l *Lease) lose() {
	l.held = false
	l.etag = ""
	l.o.Metrics.event("lost")
	l.o.Metrics.setHeld(false)
	l.logger.Info("lease-lost")
}

// Expire records that the holder's deadline passed without a renewal; it is
// called once the holder's work has stopped.
func (l *Lease) Expire() {
	if !l.held {
		return
	}
	l.held = false
	l.o.Metrics.event("expired")
	l.o.Metrics.setHeld(false)
	l.logger.Error("lease-expired", errors.New("not renewed in time: stopped reconciling"))
}

// Release ends the term: once the holder has stopped writing, it marks the
// record released so that another instance takes the lease at once.
func (l *Lease) Release(ctx context.Context) error {
	if !l.held {
		return nil
	}
	rec := l.record
	rec.Released = true
	ok, err := l.write(ctx, rec, store.Condition{IfMatch: l.etag})
	l.held = false
	l.o.Metrics.setHeld(false)
	if err != nil {
		return fmt.Errorf("lease: releasing: %w", err)
	}
	if ok {
		l.o.Metrics.event("released")
		l.logger.Info("lease-released")
	}
	return nil
}

// write puts the next version of rec under cond. It reports false when the
// condition failed. On success the deadline counts from before the request
// was sent, so that it is never later than the deadline the others would
// compute.
func (l *Lease) write(ctx context.Context, rec Record, cond store.Condition) (bool, error) {
	sent := l.o.Clock()
	now := l.o.WallClock().UTC()
	rec.Holder = l.o.Holder
	rec.RenewedAt = now
	rec.ExpiresAt = now.Add(l.o.Duration)
	rec.Duration = l.o.Duration.String()
	l.writes++
	rec.Writes = l.writes
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return false, err
	}
	etag, err := l.o.Store.Put(ctx, store.LeaseKey, body, cond)
	if errors.Is(err, store.ErrPreconditionFailed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease: writing: %w", err)
	}
	l.held, l.etag, l.record = !rec.Released, etag, rec
	l.deadline = sent.Add(l.holdFor())
	l.renewBy = sent.Add(l.renewAfter())
	if l.held {
		l.o.Metrics.setHeld(true)
		l.o.Metrics.setHolder(l.o.Holder)
	}
	return true, nil
}

// parse reads a record. A record that cannot be read is another holder's,
// of unknown period: it is taken over like any other, after a lease period.
func parse(body []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return Record{}, err
	}
	if rec.Holder == "" {
		return Record{}, errors.New("lease record without holder")
	}
	return rec, nil
}

func (r Record) duration() time.Duration {
	d, err := time.ParseDuration(r.Duration)
	if err != nil {
		return 0
	}
	return d
}

// NewHolderID names this instance: its CF instance index when it runs on
// Cloud Foundry (else the host name), and random digits that make it unique
// across restarts.
func NewHolderID() string {
	name := "instance-" + os.Getenv("CF_INSTANCE_INDEX")
	if name == "instance-" {
		name, _ = os.Hostname()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}
