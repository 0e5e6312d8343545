package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// tempPattern names the files Put writes before renaming them into place.
// The leading dot and the missing .json suffix keep them out of listings
// and out of Prometheus file_sd globs such as *.json.
const tempPattern = ".tmp-*"

// DirStore is the Store kept in a local directory with the bucket's layout
// (<root>/active/<guid>.json and so on), for development and single-host
// use. Writes are atomic: readers, Prometheus included, see the old file or
// the new one, never a partial one. Its methods are safe for concurrent use,
// and conditions hold against other processes using the same directory
// (two updaters on one host share the lease), where the system has flock.
type DirStore struct {
	root string
	// mu and lockRoot make a Put's condition check and its rename one step
	// with respect to the other Puts and Deletes of this store (mu) and of
	// other processes (lockRoot: flock is per open file, not per
	// goroutine).
	mu sync.Mutex
}

// NewDir uses root, creating it if needed.
func NewDir(root string) (*DirStore, error) {
	if root == "" {
		return nil, errors.New("dir store: a directory is required")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	return &DirStore{root: root}, nil
}

// Get reads an object's file.
func (s *DirStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := CheckKey(key); err != nil {
		return nil, "", fmt.Errorf("dir get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("dir get %s: %w", key, err)
	}
	body, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("dir get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("dir get %s: %w", key, err)
	}
	return body, ContentETag(body), nil
}

// Put writes body to a temporary file in the object's directory, syncs it
// and renames it over the object's file.
func (s *DirStore) Put(ctx context.Context, key string, body []byte, cond Condition) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("dir put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	path := s.path(key)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	tmp, err := writeTemp(dir, body)
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp)
		}
	}()

	unlock, err := s.lock()
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	defer unlock()
	if err := checkCondition(path, cond); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	renamed = true
	syncDir(dir)
	return ContentETag(body), nil
}

// Delete removes an object's file.
func (s *DirStore) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("dir delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dir delete %s: %w", key, err)
	}
	path := s.path(key)
	unlock, err := s.lock()
	if err != nil {
		return fmt.Errorf("dir delete %s: %w", key, err)
	}
	defer unlock()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dir delete %s: %w", key, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// List reads every object file under prefix, which must be a ValidPrefix,
// to compute its ETag. Files whose names ParseKey refuses (temporary files,
// strays) are left out.
func (s *DirStore) List(ctx context.Context, prefix string) ([]Object, error) {
	if !ValidPrefix(prefix) {
		return nil, fmt.Errorf("dir list: prefix %.80q: %w", prefix, ErrInvalidKey)
	}
	entries, err := os.ReadDir(s.path(prefix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dir list %s: %w", prefix, err)
	}
	// ReadDir sorts by name, so the keys come out sorted.
	var objects []Object
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dir list %s: %w", prefix, err)
		}
		key := prefix + e.Name()
		if _, _, err := ParseKey(key); err != nil || !e.Type().IsRegular() {
			continue
		}
		o, err := s.stat(key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("dir list %s: %w", prefix, err)
		}
		objects = append(objects, o)
	}
	return objects, nil
}

func (s *DirStore) stat(key string) (Object, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		return Object{}, err
	}
	defer f.Close()
	// A rename replaces the file without changing the one open here, so the
	// time and the content below belong together.
	info, err := f.Stat()
	if err != nil {
		return Object{}, err
	}
	body, err := io.ReadAll(f)
	if err != nil {
		return Object{}, err
	}
	return Object{Key: key, ETag: ContentETag(body), LastModified: info.ModTime()}, nil
}

// lock takes mu, then the root directory's lock shared with other
// processes.
func (s *DirStore) lock() (unlock func(), err error) {
	s.mu.Lock()
	release, err := lockRoot(s.root)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func() {
		release()
		s.mu.Unlock()
	}, nil
}

// path is safe to build from key because CheckKey admits only
// <prefix><guid>.json and LeaseKey.
func (s *DirStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func checkCondition(path string, cond Condition) error {
	if cond == (Condition{}) {
		return nil
	}
	current, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if cond.IfNoneMatch && exists {
		return ErrPreconditionFailed
	}
	if cond.IfMatch != "" && (!exists || ContentETag(current) != normaliseETag(cond.IfMatch)) {
		return ErrPreconditionFailed
	}
	return nil
}

// writeTemp writes body to a new temporary file in dir and syncs it.
func writeTemp(dir string, body []byte) (name string, err error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(body); err != nil {
		return "", err
	}
	// CreateTemp makes the file private; Prometheus may read it as another
	// user.
	if err := f.Chmod(0o644); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a rename or removal durable. Some file systems cannot sync
// a directory; the change itself has been made, so failures are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
