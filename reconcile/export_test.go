package reconcile

// SetBeforeApply lets tests act between a pass's reads and its writes.
func SetBeforeApply(r *Reconciler, f func(pass int)) {
	r.beforeApply = f
}

// Remembered is how many target writes r remembers.
func (r *Reconciler) Remembered() int {
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	return len(r.written)
}
