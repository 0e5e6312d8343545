package broker_test

import (
	"context"
	"errors"
	"sync"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// fakeCF answers the broker's CF look-ups from maps, counting calls.
type fakeCF struct {
	mu       sync.Mutex
	apps     map[string]targets.App
	bindings map[string]cfapi.Binding
	// err fails every look-up; appsErr fails only AppBindings.
	err     error
	appsErr error
	calls   int
	// onBinding, when set, runs at the start of Binding.
	onBinding func()
}

func newFakeCF() *fakeCF {
	return &fakeCF{apps: map[string]targets.App{}, bindings: map[string]cfapi.Binding{}}
}

func (f *fakeCF) App(_ context.Context, guid string) (targets.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return targets.App{}, f.err
	}
	a, ok := f.apps[guid]
	if !ok {
		return targets.App{}, cfapi.ErrAppNotVisible
	}
	return a, nil
}

func (f *fakeCF) Binding(_ context.Context, guid string) (cfapi.Binding, error) {
	if f.onBinding != nil {
		f.onBinding()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return cfapi.Binding{}, f.err
	}
	b, ok := f.bindings[guid]
	if !ok {
		return cfapi.Binding{}, cfapi.ErrBindingNotFound
	}
	return b, nil
}

func (f *fakeCF) AppBindings(_ context.Context, app string) ([]cfapi.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if f.appsErr != nil {
		return nil, f.appsErr
	}
	var out []cfapi.Binding
	for _, b := range f.bindings {
		if b.AppGUID == app {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeCF) setApp(app targets.App) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[app.GUID] = app
}

func (f *fakeCF) setBinding(b cfapi.Binding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bindings[b.GUID] = b
}

func (f *fakeCF) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// heldApps holds App look-ups until released, and says when one began.
type heldApps struct {
	*fakeCF
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHeldApps(cf *fakeCF) *heldApps {
	return &heldApps{fakeCF: cf, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *heldApps) App(ctx context.Context, guid string) (targets.App, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.fakeCF.App(ctx, guid)
}

// failingStore wraps a real store and fails the operations a test picks;
// before, when set, runs ahead of every operation (to act as another writer).
type failingStore struct {
	store.Store
	mu     sync.Mutex
	fail   func(op, key string) bool
	before func(op, key string)
}

var errStore = errors.New("injected store failure")

func (s *failingStore) failing(op, key string) bool {
	s.mu.Lock()
	fail, before := s.fail, s.before
	s.mu.Unlock()
	if before != nil {
		before(op, key)
	}
	return fail != nil && fail(op, key)
}

func (s *failingStore) setFail(fail func(op, key string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

func (s *failingStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	if s.failing("GET", key) {
		return nil, "", errStore
	}
	return s.Store.Get(ctx, key)
}

func (s *failingStore) Put(ctx context.Context, key string, body []byte, c store.Condition) (string, error) {
	if s.failing("PUT", key) {
		return "", errStore
	}
	return s.Store.Put(ctx, key, body, c)
}

func (s *failingStore) Delete(ctx context.Context, key string) error {
	if s.failing("DELETE", key) {
		return errStore
	}
	return s.Store.Delete(ctx, key)
}

func (s *failingStore) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if s.failing("LIST", prefix) {
		return nil, errStore
	}
	return s.Store.List(ctx, prefix)
}
