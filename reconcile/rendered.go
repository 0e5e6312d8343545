package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"

	"github.com/alphagov/cf-app-discovery/targets"
)

// renderedTargets remembers, per app, a digest of what its target file was
// last rendered from and the ETag of the file that holds those bytes. A
// pass whose inputs for an app have the same digest, and whose listing
// shows that ETag in the app's place, knows the file is right without
// rendering it: in a run in which nothing changed, no file is rendered.
// Nothing is ever invalidated: an entry is only used when both the inputs
// and the listed file are the ones it was made from.
type renderedTargets struct {
	mu    sync.Mutex
	byApp map[string]rendered
}

type rendered struct {
	inputs [sha256.Size]byte
	etag   string
}

// inputsDigest is a digest of everything targets.RenderWith renders an
// app's file from: each field of the app, its processes and routes, and of
// the options, in order, strings with their lengths, maps in key order.
// (A field added to them must be added here: a test counts them.)
func inputsDigest(app targets.App, o targets.Options) [sha256.Size]byte {
	var d digest
	d.str(app.GUID)
	d.str(app.Name)
	d.str(app.State)
	d.num(int64(len(app.Processes)))
	for _, p := range app.Processes {
		d.str(p.GUID)
		d.num(int64(p.Instances))
		d.num(p.CreatedAt.UnixNano())
	}
	d.str(app.Org)
	d.str(app.Space)
	d.num(int64(len(app.Routes)))
	for _, r := range app.Routes {
		d.str(r.Host)
		d.str(r.Domain)
		d.str(r.Path)
		d.str(r.Protocol)
		d.flag(r.Internal)
		d.num(int64(r.Port))
	}
	d.strings(app.Annotations)
	d.str(o.PaaSDomain)
	d.str(string(o.Addressing))
	s := o.Settings
	d.str(s.Path)
	d.num(int64(s.Port))
	d.num(int64(s.ScrapeInterval))
	d.num(int64(s.ScrapeTimeout))
	d.str(s.Job)
	d.strings(s.Labels)
	return sha256.Sum256(d.buf)
}

// digest is the unambiguous byte form of what inputsDigest hashes.
type digest struct{ buf []byte }

func (d *digest) num(n int64) { d.buf = binary.AppendVarint(d.buf, n) }

func (d *digest) str(s string) {
	d.num(int64(len(s)))
	d.buf = append(d.buf, s...)
}

func (d *digest) flag(b bool) {
	if b {
		d.num(1)
	} else {
		d.num(0)
	}
}

func (d *digest) strings(m map[string]string) {
	d.num(int64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.str(k)
		d.str(m[k])
	}
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
