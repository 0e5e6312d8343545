package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alphagov/cf-app-discovery/store"
)

// memStore is a Store for reconcile tests: conditional puts like S3, a
// counter per operation, and failures injected per operation and key.
type memStore struct {
	mu      sync.Mutex
	objects map[string]memObject
	ops     map[string]int
	fail    func(op, key string) error
	now     func() time.Time
	// opaqueETags gives every write an ETag that is not the MD5 of its
	// content, as S3 does for SSE-KMS objects.
	opaqueETags bool
	writes      int
}

type memObject struct {
	body     []byte
	etag     string
	modified time.Time
}

func newMemStore() *memStore {
	return &memStore{objects: map[string]memObject{}, ops: map[string]int{}, now: time.Now}
}

func (s *memStore) failure(op, key string) error {
	s.ops[op]++
	if s.fail != nil {
		return s.fail(op, key)
	}
	return nil
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("GET", key); err != nil {
		return nil, "", err
	}
	o, ok := s.objects[key]
	if !ok {
		return nil, "", store.ErrNotFound
	}
	return o.body, o.etag, nil
}

func (s *memStore) Put(_ context.Context, key string, body []byte, cond store.Condition) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := store.ParseKey(key); err != nil {
		return "", err
	}
	if err := s.failure("PUT", key); err != nil {
		return "", err
	}
	o, exists := s.objects[key]
	if cond.IfNoneMatch && exists || cond.IfMatch != "" && (!exists || o.etag != cond.IfMatch) {
		return "", store.ErrPreconditionFailed
	}
	s.writes++
	etag := store.ContentETag(body)
	if s.opaqueETags {
		etag = fmt.Sprintf("%032x", s.writes)
	}
	s.objects[key] = memObject{body: append([]byte(nil), body...), etag: etag, modified: s.now()}
	return etag, nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("DELETE", key); err != nil {
		return err
	}
	delete(s.objects, key)
	return nil
}

func (s *memStore) List(_ context.Context, prefix string) ([]store.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure("LIST", prefix); err != nil {
		return nil, err
	}
	var out []store.Object
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, store.Object{Key: k, ETag: o.etag, LastModified: o.modified})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// keys returns every key, sorted.
func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *memStore) body(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.objects[key].body)
}

func (s *memStore) resetOps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = map[string]int{}
}

func (s *memStore) opCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.ops {
		out[k] = v
	}
	return out
}

func (s *memStore) age(key string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	o.modified = o.modified.Add(-d)
	s.objects[key] = o
}

var errInjected = errors.New("injected failure")
