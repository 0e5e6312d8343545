package reconcile

import "sync/atomic"

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

// CountRenders makes r count the target files its passes render, and
// returns how many they rendered since its last call.
func CountRenders(r *Reconciler) func() int {
	var n atomic.Int64
	r.onRender = func(string) { n.Add(1) }
	return func() int { return int(n.Swap(0)) }
}
