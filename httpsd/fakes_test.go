package httpsd_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// fakeStore is a bucket in memory that counts the view's operations and
// can be told to fail them.
type fakeStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	lists   int
	gets    map[string]int
	listErr error
	// getErr fails the reads of the keys it holds.
	getErr map[string]error
}

func newFakeStore() *fakeStore {
	return &fakeStore{objects: map[string][]byte{}, gets: map[string]int{}, getErr: map[string]error{}}
}

func (f *fakeStore) List(_ context.Context, prefix string) ([]store.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []store.Object
	for key, body := range f.objects {
		if strings.HasPrefix(key, prefix) {
			out = append(out, store.Object{Key: key, ETag: store.ContentETag(body)})
		}
	}
	slices.SortFunc(out, func(a, b store.Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (f *fakeStore) Get(_ context.Context, key string) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[key]++
	if err := f.getErr[key]; err != nil {
		return nil, "", err
	}
	body, ok := f.objects[key]
	if !ok {
		return nil, "", fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	return body, store.ContentETag(body), nil
}

func (f *fakeStore) put(key string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = body
}

func (f *fakeStore) remove(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, key)
}

func (f *fakeStore) failList(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

func (f *fakeStore) failGet(key string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.getErr, key)
	} else {
		f.getErr[key] = err
	}
}

// counts returns the lists and the reads by key since the last call.
func (f *fakeStore) counts() (lists int, gets map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lists, gets = f.lists, f.gets
	f.lists, f.gets = 0, map[string]int{}
	return lists, gets
}

// clock is a settable time, safe to read from the server's goroutines.
type clock struct{ nanos atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.nanos.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.nanos.Load()) }
func (c *clock) advance(d time.Duration) { c.nanos.Add(int64(d)) }

// guid returns a valid GUID numbered n.
func guid(n int) string {
	return fmt.Sprintf("6b5f1a2e-0c3d-4e5f-8a9b-%012d", n)
}

// app is a started app numbered n in org and space.
func app(n int, org, space string, instances int) targets.App {
	return targets.App{
		GUID: guid(n), Name: fmt.Sprintf("app-%d", n), State: "STARTED", Org: org, Space: space,
		Processes: []targets.Process{{GUID: guid(100000 + n), Instances: instances}},
		Routes:    []targets.Route{{Host: fmt.Sprintf("app-%d", n), Domain: "apps.example.com", Protocol: "http1"}},
	}
}

// putApp writes app's target file where the broker would.
func putApp(f *fakeStore, a targets.App) string {
	key, err := store.TargetKey(a.GUID, a.Started())
	Expect(err).NotTo(HaveOccurred())
	f.put(key, targets.Render(a, "paas.example"))
	return key
}
