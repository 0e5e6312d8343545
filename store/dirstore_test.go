package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// newDirFixture is a DirStore in a fresh temporary directory, as a
// contract fixture, and the directory above its root.
func newDirFixture() (fx storetest.Fixture, parent string) {
	parent = GinkgoT().TempDir()
	root := filepath.Join(parent, "store")
	st, err := store.NewDir(root)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return storetest.Fixture{
		Store: st,
		PutRaw: func(key string, body []byte) {
			path := filepath.Join(root, filepath.FromSlash(key))
			Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
			Expect(os.WriteFile(path, body, 0o644)).To(Succeed())
		},
		// Everything under parent, so that a write outside root shows.
		RawKeys: func() []string { return filesUnder(parent) },
	}, parent
}

func md5Hex(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

func objectKeys(objects []store.Object) []string {
	keys := []string{}
	for _, o := range objects {
		keys = append(keys, o.Key)
	}
	return keys
}

var _ = Describe("DirStore", func() {
	var (
		parent string
		root   string
		st     *store.DirStore
		ctx    context.Context
	)

	Context("with a fresh directory", func() {
		var key string

		BeforeEach(func() {
			var fx storetest.Fixture
			fx, parent = newDirFixture()
			st = fx.Store.(*store.DirStore)
			root = filepath.Join(parent, "store")
			ctx = context.Background()
			key = storetest.Key(store.BindingPrefix, 1)
		})

		It("writes the bucket layout: <root>/<prefix><guid>.json, readable by others", func() {
			_, err := st.Put(ctx, key, []byte(`{"a":1}`), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			path := filepath.Join(root, "bindings", storetest.GUID(1)+".json")
			Expect(os.ReadFile(path)).To(Equal([]byte(`{"a":1}`)))
			info, err := os.Stat(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Mode().Perm()).To(Equal(fs.FileMode(0o644)))
		})

		It("takes LastModified from the file's modification time", func() {
			_, err := st.Put(ctx, key, []byte("x"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			info, err := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
			Expect(err).NotTo(HaveOccurred())
			objects, err := st.List(ctx, store.BindingPrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objects).To(HaveLen(1))
			Expect(objects[0].LastModified).To(BeTemporally("==", info.ModTime()))
		})

		It("leaves no temporary file behind, after writes and refused writes", func() {
			for i := range 10 {
				_, err := st.Put(ctx, key, []byte(fmt.Sprint(i)), store.Condition{})
				Expect(err).NotTo(HaveOccurred())
			}
			_, err := st.Put(ctx, key, []byte("refused"), store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			_, err = st.Put(ctx, key, []byte("refused"), store.Condition{IfMatch: "0123"})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			Expect(filesUnder(parent)).To(Equal([]string{"store/" + key}))
		})

		It("does not list a leftover temporary file or a directory named like a key", func() {
			_, err := st.Put(ctx, key, []byte("x"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(filepath.Join(root, "bindings", ".tmp-4242"), []byte(`{"partial`), 0o600)).To(Succeed())
			Expect(os.Mkdir(filepath.Join(root, "bindings", storetest.GUID(2)+".json"), 0o755)).To(Succeed())
			objects, err := st.List(ctx, store.BindingPrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal([]string{key}))
		})

		It("honours a cancelled context", func() {
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, err := st.Put(cancelled, key, []byte("x"), store.Condition{})
			Expect(err).To(MatchError(context.Canceled))
			_, _, err = st.Get(cancelled, key)
			Expect(err).To(MatchError(context.Canceled))
			Expect(filesUnder(parent)).To(BeEmpty())
		})

		It("never lets a reader see a partial file while writers replace it", func() {
			bodies := [][]byte{
				bytes.Repeat([]byte("a"), 256<<10),
				bytes.Repeat([]byte("b"), 300<<10),
			}
			_, err := st.Put(ctx, key, bodies[0], store.Condition{})
			Expect(err).NotTo(HaveOccurred())

			var (
				writers sync.WaitGroup
				readers sync.WaitGroup
				done    = make(chan struct{})
				mu      sync.Mutex
				reads   int
				bad     []string
			)
			report := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(bad) < 5 {
					bad = append(bad, fmt.Sprintf(format, args...))
				}
			}
			for w := range 2 {
				writers.Add(1)
				go func() {
					defer writers.Done()
					for i := range 40 {
						if _, err := st.Put(ctx, key, bodies[(w+i)%2], store.Condition{}); err != nil {
							report("put: %v", err)
						}
					}
				}()
			}
			for range 3 {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						got, etag, err := st.Get(ctx, key)
						switch {
						case err != nil:
							report("get: %v", err)
						case !bytes.Equal(got, bodies[0]) && !bytes.Equal(got, bodies[1]):
							report("read %d bytes that are neither body", len(got))
						case etag != md5Hex(got):
							report("etag %s does not match the content", etag)
						}
						objects, err := st.List(ctx, store.BindingPrefix)
						switch {
						case err != nil:
							report("list: %v", err)
						case len(objects) != 1:
							report("listed %v", objectKeys(objects))
						case objects[0].ETag != md5Hex(bodies[0]) && objects[0].ETag != md5Hex(bodies[1]):
							report("listed etag %s of neither body", objects[0].ETag)
						}
						mu.Lock()
						reads++
						mu.Unlock()
					}
				}()
			}
			writers.Wait()
			close(done)
			readers.Wait()
			Expect(bad).To(BeEmpty())
			Expect(reads).To(BeNumerically(">", 0))
			Expect(filesUnder(parent)).To(Equal([]string{"store/" + key}))
		})
	})

	Describe("NewDirStore", func() {
		It("creates a missing root", func() {
			root := filepath.Join(GinkgoT().TempDir(), "a", "b")
			_, err := store.NewDir(root)
			Expect(err).NotTo(HaveOccurred())
			Expect(root).To(BeADirectory())
		})

		It("refuses an empty root", func() {
			_, err := store.NewDir("")
			Expect(err).To(HaveOccurred())
		})
	})
})

// filesUnder lists the files (not directories) under dir, as slash paths
// relative to it.
func filesUnder(dir string) []string {
	files := []string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return files
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return files
}
