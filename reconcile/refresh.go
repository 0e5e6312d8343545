package reconcile

import (
	"context"
	"slices"

	"code.cloudfoundry.org/lager/v3"
)

// RunApps reconciles the target files of some apps with the code of Run:
// the same reads for these apps only (their bindings, then those of them
// that are bound, in bulk), the same planning and applying, repeated until
// a pass changes nothing, so that an unbind made meanwhile is not undone.
// An app that is not bound costs no look-up; records are left to Run. It
// returns how many of the apps are bound.
func (r *Reconciler) RunApps(ctx context.Context, appGUIDs []string) (int, error) {
	subset := slices.Compact(slices.Sorted(slices.Values(appGUIDs)))
	if len(subset) == 0 {
		return 0, nil
	}
	start := r.now()
	logger := r.logger().Session("refresh")
	res, err := r.passes(ctx, logger, subset)
	if r.Metrics != nil {
		r.Metrics.observeChanges(res)
	}
	if err != nil {
		logger.Error("failed", err, lager.Data{"apps": len(subset), "passes": res.Passes})
		return res.Bound, err
	}
	logger.Info("done", lager.Data{
		"apps": len(subset), "bound": res.Bound, "passes": res.Passes,
		"targets_written": res.TargetsWritten, "targets_deleted": res.TargetsDeleted,
		"duration": r.now().Sub(start).String(),
	})
	return res.Bound, nil
}

var _ AppsRefresher = (*Reconciler)(nil)
