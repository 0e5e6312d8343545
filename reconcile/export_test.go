package reconcile

// SetBeforeApply lets tests act between a pass's reads and its writes.
func SetBeforeApply(r *Reconciler, f func(pass int)) {
	r.beforeApply = f
}

// CachedRecords is how many binding records r holds in memory.
func CachedRecords(r *Reconciler) int {
	r.records.mu.Lock()
	defer r.records.mu.Unlock()
	return len(r.records.byGUID)
}
