package lease

import (
	"context"
	"errors"
	"time"

	"code.cloudfoundry.org/lager/v3"
)

// releaseTimeout bounds the write that releases the lease at shutdown: CF
// gives a stopping app 10 s in all.
const releaseTimeout = 2 * time.Second

// Run takes part in the lease until ctx is done. It stands by, reading the
// lease every PollInterval; each time it takes the lease it calls lead with
// a context that ends with the term: when the lease is lost, when it could
// not be renewed before its deadline, or when ctx is done. lead must stop
// writing and return once its context is done; Run waits for it before it
// stands by again. When ctx is done, Run releases the lease it holds, so
// that another instance takes over at once.
func (l *Lease) Run(ctx context.Context, lead func(context.Context)) {
	for {
		held, err := l.TryAcquire(ctx)
		if err != nil && ctx.Err() == nil {
			l.logger.Error("lease-read-failed", err)
		}
		if held {
			l.hold(ctx, lead)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.PollInterval()):
		}
	}
}

// hold runs one term: lead in its own goroutine, renewals here.
func (l *Lease) hold(ctx context.Context, lead func(context.Context)) {
	term, end := context.WithCancel(ctx)
	defer end()
	// The term's work stops at the deadline by this instance's clock,
	// whether or not a renewal is still on its way.
	deadline := time.AfterFunc(l.until(l.Deadline()), end)
	defer deadline.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(term)
	}()
	renew := time.NewTimer(l.until(l.RenewBy()))
	defer renew.Stop()

	for term.Err() == nil {
		select {
		case <-term.Done():
		case <-renew.C:
			err := l.Renew(term)
			switch {
			case err == nil:
				if deadline.Stop() {
					deadline.Reset(l.until(l.Deadline()))
				}
				renew.Reset(l.until(l.RenewBy()))
			case errors.Is(err, ErrLost), errors.Is(err, ErrNotHeld):
				end()
			default:
				// Try again soon; the deadline stops the work if the store
				// stays unreachable.
				renew.Reset(min(l.PollInterval(), l.until(l.Deadline())))
			}
		}
	}
	<-done
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			l.logger.Error("lease-release-failed", err)
		}
		return
	}
	l.Expire()
	l.logger.Info("lease-term-ended", lager.Data{"held": l.held})
}

// until is how long from now, on Clock, until t; never negative.
func (l *Lease) until(t time.Time) time.Duration {
	return max(t.Sub(l.o.Clock()), 0)
}
