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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// storeFixture is a Store under test with direct access to what backs it.
type storeFixture struct {
	st store.Store
	// putRaw writes an object under any name, bypassing the store.
	putRaw func(key string, body []byte)
	// rawKeys names everything that backs the store, whatever its shape.
	rawKeys func() []string
}

// storeGUID is a valid GUID numbered n.
func storeGUID(n int) string {
	return fmt.Sprintf("5703e0a1-7c2b-4d1e-9f0a-%012d", n)
}

func storeKey(prefix string, n int) string {
	return prefix + storeGUID(n) + ".json"
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

// describeStoreContract is the behaviour every Store implementation shares.
// newFixture runs before each spec.
func describeStoreContract(newFixture func() storeFixture) {
	var (
		fx  storeFixture
		st  store.Store
		ctx context.Context
		key string
	)

	BeforeEach(func() {
		fx = newFixture()
		st = fx.st
		ctx = context.Background()
		key = storeKey(store.ActivePrefix, 1)
	})

	Describe("Put and Get", func() {
		It("round-trips the bytes, with the hex MD5 of the content as ETag", func() {
			body := []byte(`[{"targets":["a.example.com"],"labels":{}}]` + "\n")
			etag, err := st.Put(ctx, key, body, store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(etag).To(Equal(md5Hex(body)))

			got, getETag, err := st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(body))
			Expect(getETag).To(Equal(etag))
		})

		It("round-trips an empty body", func() {
			etag, err := st.Put(ctx, key, []byte{}, store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(etag).To(Equal(md5Hex(nil)))
			got, _, err := st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(BeEmpty())
		})

		It("replaces an object on an unconditional Put", func() {
			_, err := st.Put(ctx, key, []byte("[1]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			etag, err := st.Put(ctx, key, []byte("[2]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(etag).To(Equal(md5Hex([]byte("[2]"))))
			got, _, err := st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).To(Equal("[2]"))
		})

		It("keeps the three prefixes apart", func() {
			for i, p := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix} {
				_, err := st.Put(ctx, p+storeGUID(7)+".json", []byte{byte('a' + i)}, store.Condition{})
				Expect(err).NotTo(HaveOccurred())
			}
			got, _, err := st.Get(ctx, storeKey(store.InactivePrefix, 7))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).To(Equal("b"))
		})

		Context("when the object does not exist", func() {
			It("Get returns an error wrapping ErrNotFound", func() {
				_, _, err := st.Get(ctx, key)
				Expect(err).To(MatchError(store.ErrNotFound))
			})
		})
	})

	Describe("List", func() {
		BeforeEach(func() {
			for _, n := range []int{3, 1, 2} {
				_, err := st.Put(ctx, storeKey(store.ActivePrefix, n), []byte(fmt.Sprint(n)), store.Condition{})
				Expect(err).NotTo(HaveOccurred())
			}
			_, err := st.Put(ctx, storeKey(store.InactivePrefix, 4), []byte("4"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			_, err = st.Put(ctx, storeKey(store.BindingPrefix, 5), []byte("5"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
		})

		It("returns the objects under the prefix, sorted by key, with ETags and times", func() {
			objects, err := st.List(ctx, store.ActivePrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal([]string{
				storeKey(store.ActivePrefix, 1), storeKey(store.ActivePrefix, 2), storeKey(store.ActivePrefix, 3),
			}))
			for i, o := range objects {
				Expect(o.ETag).To(Equal(md5Hex([]byte(fmt.Sprint(i + 1)))))
				Expect(o.LastModified).NotTo(BeZero())
			}
		})

		It("filters by prefix", func() {
			objects, err := st.List(ctx, store.InactivePrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal([]string{storeKey(store.InactivePrefix, 4)}))
			objects, err = st.List(ctx, store.BindingPrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal([]string{storeKey(store.BindingPrefix, 5)}))
		})

		It("leaves out objects whose keys are not store keys", func() {
			for _, stray := range []string{
				"active/notes.txt",
				"active/not-a-guid.json",
				"active/" + storeGUID(9) + ".json.bak",
				"active/sub/" + storeGUID(8) + ".json",
				"active/.tmp-123456",
			} {
				fx.putRaw(stray, []byte("stray"))
			}
			objects, err := st.List(ctx, store.ActivePrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal([]string{
				storeKey(store.ActivePrefix, 1), storeKey(store.ActivePrefix, 2), storeKey(store.ActivePrefix, 3),
			}))
		})

		It("returns nothing for a prefix with no objects", func() {
			Expect(st.Delete(ctx, storeKey(store.BindingPrefix, 5))).To(Succeed())
			Expect(st.List(ctx, store.BindingPrefix)).To(BeEmpty())
		})

		DescribeTable("refuses a prefix other than the three store prefixes",
			func(prefix string) {
				_, err := st.List(ctx, prefix)
				Expect(err).To(MatchError(store.ErrInvalidKey))
			},
			Entry("empty", ""),
			Entry("another prefix", "other/"),
			Entry("without its slash", "active"),
			Entry("a traversal", "active/../"),
			Entry("a parent", "../"),
			Entry("a key", storeKey(store.ActivePrefix, 1)),
		)
	})

	Describe("Delete", func() {
		It("removes the object", func() {
			_, err := st.Put(ctx, key, []byte("[]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Delete(ctx, key)).To(Succeed())
			_, _, err = st.Get(ctx, key)
			Expect(err).To(MatchError(store.ErrNotFound))
			Expect(st.List(ctx, store.ActivePrefix)).To(BeEmpty())
		})

		It("is idempotent: a missing object is not an error", func() {
			_, err := st.Put(ctx, key, []byte("[]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Delete(ctx, key)).To(Succeed())
			Expect(st.Delete(ctx, key)).To(Succeed())
			Expect(st.Delete(ctx, storeKey(store.BindingPrefix, 42))).To(Succeed())
		})
	})

	Describe("conditional Put", func() {
		var etag string

		BeforeEach(func() {
			var err error
			etag, err = st.Put(ctx, key, []byte("old"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
		})

		expectBody := func(k, want string) {
			got, _, err := st.Get(ctx, k)
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			ExpectWithOffset(1, string(got)).To(Equal(want))
		}

		It("IfNoneMatch creates a missing object", func() {
			other := storeKey(store.BindingPrefix, 2)
			created, err := st.Put(ctx, other, []byte("new"), store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(Equal(md5Hex([]byte("new"))))
			expectBody(other, "new")
		})

		It("IfNoneMatch on an existing object fails with ErrPreconditionFailed and writes nothing", func() {
			_, err := st.Put(ctx, key, []byte("new"), store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			expectBody(key, "old")
		})

		It("IfMatch with a stale ETag fails with ErrPreconditionFailed and writes nothing", func() {
			_, err := st.Put(ctx, key, []byte("newer"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			_, err = st.Put(ctx, key, []byte("new"), store.Condition{IfMatch: etag})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			expectBody(key, "newer")
		})

		It("IfMatch with the current ETag writes", func() {
			updated, err := st.Put(ctx, key, []byte("new"), store.Condition{IfMatch: etag})
			Expect(err).NotTo(HaveOccurred())
			Expect(updated).To(Equal(md5Hex([]byte("new"))))
			expectBody(key, "new")
		})

		It("IfMatch on a missing object fails with ErrPreconditionFailed and creates nothing", func() {
			other := storeKey(store.ActivePrefix, 2)
			_, err := st.Put(ctx, other, []byte("new"), store.Condition{IfMatch: etag})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			_, _, err = st.Get(ctx, other)
			Expect(err).To(MatchError(store.ErrNotFound))
		})

		It("lets exactly one of concurrent IfNoneMatch writers win", func() {
			const (
				rounds  = 40
				writers = 6
			)
			for round := range rounds {
				other := storeKey(store.BindingPrefix, 100+round)
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					won     []string
					refused int
				)
				start := make(chan struct{})
				for i := range writers {
					wg.Add(1)
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						body := fmt.Sprint("writer-", i)
						<-start
						_, err := st.Put(ctx, other, []byte(body), store.Condition{IfNoneMatch: true})
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							won = append(won, body)
							return
						}
						Expect(err).To(MatchError(store.ErrPreconditionFailed))
						refused++
					}()
				}
				close(start)
				wg.Wait()
				Expect(won).To(HaveLen(1), "round %d", round)
				Expect(refused).To(Equal(writers-1), "round %d", round)
				expectBody(other, won[0])
			}
		})
	})

	DescribeTable("refuses keys that are not store keys, writing nothing",
		func(bad string) {
			_, _, err := st.Get(ctx, bad)
			Expect(err).To(MatchError(store.ErrInvalidKey))
			_, err = st.Put(ctx, bad, []byte("x"), store.Condition{})
			Expect(err).To(MatchError(store.ErrInvalidKey))
			_, err = st.Put(ctx, bad, []byte("x"), store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(store.ErrInvalidKey))
			Expect(st.Delete(ctx, bad)).To(MatchError(store.ErrInvalidKey))
			Expect(fx.rawKeys()).To(BeEmpty())
		},
		Entry("a traversal", "active/../x.json"),
		Entry("a binding key that is not a GUID", "bindings/not-a-guid.json"),
		Entry("an encoded traversal", "active/%2e%2e.json"),
		Entry("the empty key", ""),
		Entry("another prefix", "other/"+storeGUID(1)+".json"),
		Entry("a traversal after a valid key", "active/"+storeGUID(1)+".json/../../x.json"),
		Entry("a leading slash", "/active/"+storeGUID(1)+".json"),
		Entry("a parent directory", "../active/"+storeGUID(1)+".json"),
		Entry("a missing suffix", "active/"+storeGUID(1)),
		Entry("a NUL byte", "active/"+storeGUID(1)+".json\x00"),
	)
}

var _ = Describe("DirStore", func() {
	var (
		parent string
		root   string
		st     *store.DirStore
		ctx    context.Context
	)

	newDirFixture := func() storeFixture {
		parent = GinkgoT().TempDir()
		root = filepath.Join(parent, "store")
		var err error
		st, err = store.NewDir(root)
		Expect(err).NotTo(HaveOccurred())
		ctx = context.Background()
		return storeFixture{
			st: st,
			putRaw: func(key string, body []byte) {
				path := filepath.Join(root, filepath.FromSlash(key))
				Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
				Expect(os.WriteFile(path, body, 0o644)).To(Succeed())
			},
			// Everything under parent, so that a write outside root shows.
			rawKeys: func() []string { return filesUnder(parent) },
		}
	}

	Describe("the Store contract", func() {
		describeStoreContract(newDirFixture)
	})

	Context("with a fresh directory", func() {
		var key string

		BeforeEach(func() {
			newDirFixture()
			key = storeKey(store.BindingPrefix, 1)
		})

		It("writes the bucket layout: <root>/<prefix><guid>.json, readable by others", func() {
			_, err := st.Put(ctx, key, []byte(`{"a":1}`), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			path := filepath.Join(root, "bindings", storeGUID(1)+".json")
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
			Expect(os.Mkdir(filepath.Join(root, "bindings", storeGUID(2)+".json"), 0o755)).To(Succeed())
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
