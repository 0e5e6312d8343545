package reconcile

import (
	"crypto/sha256"
	"sync"
)

// renderedTargets remembers, per app, the digest of what its target file
// was last rendered from (targets.InputsDigest) and the ETag of the file
// that holds those bytes. A pass whose inputs for an app have the same
// digest, and whose listing shows that ETag in the app's place, knows the
// file is right without rendering it: in a run in which nothing changed, no
// file is rendered. Nothing is ever invalidated: an entry is only used when
// both the inputs and the listed file are the ones it was made from.
type renderedTargets struct {
	mu    sync.Mutex
	byApp map[string]rendered
}

type rendered struct {
	inputs [sha256.Size]byte
	etag   string
}

// holds reports whether the file listed with etag holds what inputs render
// to, as far as this updater knows.
func (t *renderedTargets) holds(app string, inputs [sha256.Size]byte, etag string) bool {
	if etag == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byApp[app]
	return ok && r.inputs == inputs && r.etag == etag
}

// remember records that the file with etag holds what inputs render to.
func (t *renderedTargets) remember(app string, inputs [sha256.Size]byte, etag string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byApp == nil {
		t.byApp = map[string]rendered{}
	}
	t.byApp[app] = rendered{inputs: inputs, etag: etag}
}

// forgetUnless drops the entries of the apps for which keep is false.
func (t *renderedTargets) forgetUnless(keep func(app string) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for app := range t.byApp {
		if !keep(app) {
			delete(t.byApp, app)
		}
	}
}
