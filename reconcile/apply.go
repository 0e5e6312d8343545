package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"code.cloudfoundry.org/lager/v3"
	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/store"
)

// apply makes the changes that plan hands it through the bucket, Workers
// at a time (plan waits while they are all busy), and counts them by kind.
// A failed change does not stop the others: each leaves its app
// consistent, and the run fails once they are all done.
func (r *Reconciler) apply(ctx context.Context, logger lager.Logger, plan func(apply func(change))) (map[string]int, error) {
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		failed int
		total  int
		g      errgroup.Group
	)
	g.SetLimit(max(r.Workers, 1))
	plan(func(c change) {
		total++
		g.Go(func() error {
			kind, err := r.applyOne(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				logger.Error(c.kind+"-failed", err, c.logData())
				return err
			}
			counts[kind]++
			logger.Debug(kind, c.logData())
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return counts, fmt.Errorf("%w: %d of %d store changes failed, first: %w", ErrReconcile, failed, total, err)
	}
	return counts, nil
}

// applyOne makes one change and says what it was: its kind, or a conflict
// when its condition failed.
func (r *Reconciler) applyOne(ctx context.Context, c change) (string, error) {
	bucket := r.bucket()
	var err error
	switch c.kind {
	case kindWriteTarget, kindDeleteTarget:
		if c.target != nil {
			err = bucket.ApplyTarget(ctx, *c.target)
		} else {
			err = bucket.RemoveTarget(ctx, c.app, c.started)
		}
	case kindAdoptRecord:
		_, err = bucket.WriteBinding(ctx, *c.record, store.Condition{IfNoneMatch: true})
	case kindRemoveRecord:
		err = bucket.DeleteBinding(ctx, c.binding)
	default:
		err = fmt.Errorf("unknown change %q", c.kind)
	}
	if errors.Is(err, store.ErrPreconditionFailed) {
		return kindConflict, nil
	}
	return c.kind, err
}
