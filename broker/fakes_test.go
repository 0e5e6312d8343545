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

// failingStore wraps a real store and fails the operations a test picks;
// before, when set, runs ahead of every operation (to act as another
// writer); hold stops one operation until the test lets it go on.
type failingStore struct {
	store.Store
	mu     sync.Mutex
	fail   func(op, key string) bool
	before func(op, key string)
	holds  []*heldOp
}

// heldOp is an operation a test holds: entered is closed when it arrives,
// done when it has returned.
type heldOp struct {
	op, key       string
	entered, done chan struct{}
	proceed       chan struct{}
}

// release lets the held operation go on.
func (h *heldOp) release() { close(h.proceed) }

// hold holds the next operation op on key (GET, PUT, DELETE) until released.
func (s *failingStore) hold(op, key string) *heldOp {
	h := &heldOp{op: op, key: key, entered: make(chan struct{}), done: make(chan struct{}), proceed: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = append(s.holds, h)
	return h
}

// wait holds an operation the test asked to hold, and returns what to run
// once it has returned.
func (s *failingStore) wait(op, key string) func() {
	s.mu.Lock()
	var held *heldOp
	for i, h := range s.holds {
		if h.op == op && h.key == key {
			held = h
			s.holds = append(s.holds[:i], s.holds[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if held == nil {
		return func() {}
	}
	close(held.entered)
	<-held.proceed
	return func() { close(held.done) }
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
	defer s.wait("GET", key)()
	if s.failing("GET", key) {
		return nil, "", errStore
	}
	return s.Store.Get(ctx, key)
}

func (s *failingStore) Put(ctx context.Context, key string, body []byte, c store.Condition) (string, error) {
	defer s.wait("PUT", key)()
	if s.failing("PUT", key) {
		return "", errStore
	}
	return s.Store.Put(ctx, key, body, c)
}

func (s *failingStore) Delete(ctx context.Context, key string) error {
	defer s.wait("DELETE", key)()
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
