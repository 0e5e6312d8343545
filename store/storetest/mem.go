package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/alphagov/cf-app-discovery/store"
)

// The operations Mem counts and names to its failure hook.
const (
	// OpGet is Store.Get.
	OpGet = "GET"
	// OpPut is Store.Put.
	OpPut = "PUT"
	// OpDelete is Store.Delete.
	OpDelete = "DELETE"
	// OpList is Store.List.
	OpList = "LIST"
)

// Mem is a Store in memory for tests: conditional writes as S3 makes them,
// a count of operations, failures injected per operation and key, and
// optionally ETags that are not the MD5 of the content, as S3 gives
// SSE-KMS objects. The zero value is not usable: call NewMem.
type Mem struct {
	mu      sync.Mutex
	objects map[string]memObject
	ops     map[string]int
	fail    func(op, key string) error
	opaque  bool
	writes  int
}

type memObject struct {
	body     []byte
	etag     string
	modified time.Time
}

// NewMem returns an empty store.
func NewMem() *Mem {
	return &Mem{objects: map[string]memObject{}, ops: map[string]int{}}
}

// SetFail calls fail before every operation, with the operation (OpGet,
// OpPut, OpDelete, OpList) and its key or prefix; an error it returns is the
// operation's answer. fail runs without the store's lock, so it may act on
// the store as another writer would. nil removes it.
func (m *Mem) SetFail(fail func(op, key string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = fail
}

// SetOpaqueETags makes the ETags of later writes counters rather than the
// MD5 of the content.
func (m *Mem) SetOpaqueETags(opaque bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opaque = opaque
}

func (m *Mem) enter(op, key string) error {
	m.mu.Lock()
	m.ops[op]++
	fail := m.fail
	m.mu.Unlock()
	if fail != nil {
		return fail(op, key)
	}
	return nil
}

func checkKey(key string) error {
	_, _, err := store.ParseKey(key)
	return err
}

// Get implements store.Store.
func (m *Mem) Get(_ context.Context, key string) ([]byte, string, error) {
	if err := checkKey(key); err != nil {
		return nil, "", err
	}
	if err := m.enter(OpGet, key); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return nil, "", fmt.Errorf("mem get %s: %w", key, store.ErrNotFound)
	}
	return slices.Clone(o.body), o.etag, nil
}

// Put implements store.Store.
func (m *Mem) Put(_ context.Context, key string, body []byte, cond store.Condition) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := m.enter(OpPut, key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, exists := m.objects[key]
	if cond.IfNoneMatch && exists || cond.IfMatch != "" && (!exists || o.etag != cond.IfMatch) {
		return "", fmt.Errorf("mem put %s: %w", key, store.ErrPreconditionFailed)
	}
	return m.write(key, body), nil
}

func (m *Mem) write(key string, body []byte) string {
	m.writes++
	etag := store.ContentETag(body)
	if m.opaque {
		etag = fmt.Sprintf("%032x", m.writes)
	}
	m.objects[key] = memObject{body: slices.Clone(body), etag: etag, modified: time.Now()}
	return etag
}

// Delete implements store.Store.
func (m *Mem) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := m.enter(OpDelete, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

// List implements store.Store.
func (m *Mem) List(_ context.Context, prefix string) ([]store.Object, error) {
	if !store.ValidPrefix(prefix) {
		return nil, fmt.Errorf("mem list %.80q: %w", prefix, store.ErrInvalidKey)
	}
	if err := m.enter(OpList, prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Object
	for _, k := range slices.Sorted(maps.Keys(m.objects)) {
		if p, _, err := store.ParseKey(k); err == nil && p == prefix {
			o := m.objects[k]
			out = append(out, store.Object{Key: k, ETag: o.etag, LastModified: o.modified})
		}
	}
	return out, nil
}

// PutRaw writes an object under any key, bypassing the checks, the count
// and the failures.
func (m *Mem) PutRaw(key string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.write(key, body)
}

// Keys returns every key held, whatever its shape, sorted.
func (m *Mem) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.objects))
}

// Body returns an object's content, or "" when there is none.
func (m *Mem) Body(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.objects[key].body)
}

// Age makes an object look older by d.
func (m *Mem) Age(key string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objects[key]; ok {
		o.modified = o.modified.Add(-d)
		m.objects[key] = o
	}
}

// Ops counts the operations since NewMem or ResetOps, by operation,
// failed ones included.
func (m *Mem) Ops() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.ops)
}

// ResetOps sets the operation counts to zero.
func (m *Mem) ResetOps() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = map[string]int{}
}

// Fixture is m as a contract fixture.
func (m *Mem) Fixture() Fixture {
	return Fixture{Store: m, PutRaw: m.PutRaw, RawKeys: m.Keys}
}

var _ store.Store = (*Mem)(nil)
