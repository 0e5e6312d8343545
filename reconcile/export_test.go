package reconcile

// SetBeforeApply lets tests act between a pass's planning and its writes.
func SetBeforeApply(r *Reconciler, f func(pass int)) {
	r.beforeApply = f
}
