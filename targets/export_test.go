package targets

// SetBeforeApply lets tests act between a pass's reads and its writes.
func SetBeforeApply(r *Reconciler, f func(pass int)) {
	r.beforeApply = f
}

// EtagOf exposes the ETag computation to tests.
var EtagOf = etagOf
