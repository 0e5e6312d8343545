// Package storetest holds what tests of stores and of their users share:
// the Store contract, runnable against any implementation, and Mem, an
// in-memory Store that can be told to fail.
package storetest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/store"
)

// Fixture is a Store under test, with direct access to what backs it.
type Fixture struct {
	Store store.Store
	// PutRaw writes an object under any name, bypassing Store. When nil,
	// the specs that need it are skipped.
	PutRaw func(key string, body []byte)
	// RawKeys names everything that backs Store, whatever its shape, so
	// that a write outside the store's keys shows. When nil, the specs
	// that need it are skipped.
	RawKeys func() []string
	// ContendedRounds is how many rounds of concurrent conditional writers
	// the contract runs; 40 when zero. A server that makes a losing writer
	// wait (SeaweedFS retries its lock after a second) needs fewer.
	ContendedRounds int
}

// GUID is a valid GUID numbered n.
func GUID(n int) string {
	return fmt.Sprintf("5703e0a1-7c2b-4d1e-9f0a-%012d", n)
}

// Key is the key under prefix of the object numbered n.
func Key(prefix string, n int) string {
	return prefix + GUID(n) + ".json"
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

// DescribeContract declares the behaviour every Store shares, in the
// current container. newFixture runs before each spec and returns an empty
// store.
func DescribeContract(newFixture func() Fixture) {
	var (
		fx  Fixture
		st  store.Store
		ctx context.Context
		key string
	)

	ginkgo.BeforeEach(func() {
		fx = newFixture()
		st = fx.Store
		ctx = context.Background()
		key = Key(store.ActivePrefix, 1)
	})

	put := func(k, body string, cond store.Condition) string {
		etag, err := st.Put(ctx, k, []byte(body), cond)
		gomega.ExpectWithOffset(1, err).NotTo(gomega.HaveOccurred())
		return etag
	}
	// expectBody checks k's content; want "" means no object.
	expectBody := func(k, want string) {
		got, _, err := st.Get(ctx, k)
		if want == "" {
			gomega.ExpectWithOffset(1, err).To(gomega.MatchError(store.ErrNotFound))
			return
		}
		gomega.ExpectWithOffset(1, err).NotTo(gomega.HaveOccurred())
		gomega.ExpectWithOffset(1, string(got)).To(gomega.Equal(want))
	}

	ginkgo.Describe("Put and Get", func() {
		ginkgo.It("round-trips the bytes, with the hex MD5 of the content as ETag", func() {
			body := []byte(`[{"targets":["a.example.com"],"labels":{}}]` + "\n")
			etag, err := st.Put(ctx, key, body, store.Condition{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(etag).To(gomega.Equal(md5Hex(body)))

			got, getETag, err := st.Get(ctx, key)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(got).To(gomega.Equal(body))
			gomega.Expect(getETag).To(gomega.Equal(etag))
		})

		ginkgo.It("round-trips an empty body", func() {
			etag, err := st.Put(ctx, key, []byte{}, store.Condition{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(etag).To(gomega.Equal(md5Hex(nil)))
			got, _, err := st.Get(ctx, key)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(got).To(gomega.BeEmpty())
		})

		ginkgo.It("keeps the prefixes apart", func() {
			for i, p := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix} {
				put(Key(p, 7), string(rune('a'+i)), store.Condition{})
			}
			expectBody(Key(store.InactivePrefix, 7), "b")
		})

		ginkgo.It("Get of a missing object returns an error wrapping ErrNotFound", func() {
			_, _, err := st.Get(ctx, key)
			gomega.Expect(err).To(gomega.MatchError(store.ErrNotFound))
		})
	})

	ginkgo.Describe("conditional Put", func() {
		// Each arrangement leaves key in some state and returns the ETag a
		// writer read before that state.
		never := func() string { return md5Hex([]byte("never written")) }
		current := func() string { return put(key, "old", store.Condition{}) }
		replaced := func() string {
			etag := put(key, "old", store.Condition{})
			put(key, "newer", store.Condition{})
			return etag
		}
		removed := func() string {
			etag := put(key, "old", store.Condition{})
			gomega.Expect(st.Delete(ctx, key)).To(gomega.Succeed())
			return etag
		}
		none := func(string) store.Condition { return store.Condition{} }
		ifNoneMatch := func(string) store.Condition { return store.Condition{IfNoneMatch: true} }
		ifMatch := func(etag string) store.Condition { return store.Condition{IfMatch: etag} }

		ginkgo.DescribeTable("writes when its condition holds, else fails with ErrPreconditionFailed and changes nothing",
			func(arrange func() string, cond func(etag string) store.Condition, wantWritten bool, wantBody string) {
				etag, err := st.Put(ctx, key, []byte("new"), cond(arrange()))
				if wantWritten {
					gomega.Expect(err).NotTo(gomega.HaveOccurred())
					gomega.Expect(etag).To(gomega.Equal(md5Hex([]byte("new"))))
				} else {
					gomega.Expect(err).To(gomega.MatchError(store.ErrPreconditionFailed))
				}
				expectBody(key, wantBody)
			},
			ginkgo.Entry("no condition, no object: creates", never, none, true, "new"),
			ginkgo.Entry("no condition, an object: replaces", current, none, true, "new"),
			ginkgo.Entry("IfNoneMatch, no object: creates", never, ifNoneMatch, true, "new"),
			ginkgo.Entry("IfNoneMatch, an object removed since: creates", removed, ifNoneMatch, true, "new"),
			ginkgo.Entry("IfNoneMatch, an object: fails", current, ifNoneMatch, false, "old"),
			ginkgo.Entry("IfMatch the current ETag: replaces", current, ifMatch, true, "new"),
			ginkgo.Entry("IfMatch a stale ETag: fails", replaced, ifMatch, false, "newer"),
			ginkgo.Entry("IfMatch, no object ever: fails and creates nothing", never, ifMatch, false, ""),
			ginkgo.Entry("IfMatch, the object removed since: fails and creates nothing", removed, ifMatch, false, ""),
		)

		ginkgo.It("lets exactly one of concurrent IfNoneMatch writers win", func() {
			const writers = 6
			rounds := fx.ContendedRounds
			if rounds == 0 {
				rounds = 40
			}
			for round := range rounds {
				other := Key(store.BindingPrefix, 100+round)
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					won     []string
					refused int
				)
				start := make(chan struct{})
				for i := range writers {
					wg.Go(func() {
						defer ginkgo.GinkgoRecover()
						body := fmt.Sprint("writer-", i)
						<-start
						_, err := st.Put(ctx, other, []byte(body), store.Condition{IfNoneMatch: true})
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							won = append(won, body)
							return
						}
						gomega.Expect(err).To(gomega.MatchError(store.ErrPreconditionFailed))
						refused++
					})
				}
				close(start)
				wg.Wait()
				gomega.Expect(won).To(gomega.HaveLen(1), "round %d", round)
				gomega.Expect(refused).To(gomega.Equal(writers-1), "round %d", round)
				expectBody(other, won[0])
			}
		})
	})

	ginkgo.Describe("List", func() {
		ginkgo.BeforeEach(func() {
			for _, n := range []int{3, 1, 2} {
				put(Key(store.ActivePrefix, n), fmt.Sprint(n), store.Condition{})
			}
			put(Key(store.InactivePrefix, 4), "4", store.Condition{})
			put(Key(store.BindingPrefix, 5), "5", store.Condition{})
		})

		ginkgo.It("returns the objects under the prefix, sorted by key, with ETags and times", func() {
			objects, err := st.List(ctx, store.ActivePrefix)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(objectKeys(objects)).To(gomega.Equal([]string{
				Key(store.ActivePrefix, 1), Key(store.ActivePrefix, 2), Key(store.ActivePrefix, 3),
			}))
			for i, o := range objects {
				gomega.Expect(o.ETag).To(gomega.Equal(md5Hex([]byte(fmt.Sprint(i + 1)))))
				gomega.Expect(o.LastModified).NotTo(gomega.BeZero())
			}
		})

		ginkgo.It("filters by prefix", func() {
			objects, err := st.List(ctx, store.InactivePrefix)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(objectKeys(objects)).To(gomega.Equal([]string{Key(store.InactivePrefix, 4)}))
			objects, err = st.List(ctx, store.BindingPrefix)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(objectKeys(objects)).To(gomega.Equal([]string{Key(store.BindingPrefix, 5)}))
		})

		ginkgo.It("leaves out objects whose keys are not store keys", func() {
			if fx.PutRaw == nil {
				ginkgo.Skip("the fixture cannot write raw objects")
			}
			for _, stray := range []string{
				"active/notes.txt",
				"active/not-a-guid.json",
				"active/" + GUID(9) + ".json.bak",
				"active/sub/" + GUID(8) + ".json",
				"active/.tmp-123456",
			} {
				fx.PutRaw(stray, []byte("stray"))
			}
			objects, err := st.List(ctx, store.ActivePrefix)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(objectKeys(objects)).To(gomega.Equal([]string{
				Key(store.ActivePrefix, 1), Key(store.ActivePrefix, 2), Key(store.ActivePrefix, 3),
			}))
		})

		ginkgo.It("returns nothing for a prefix with no objects", func() {
			gomega.Expect(st.Delete(ctx, Key(store.BindingPrefix, 5))).To(gomega.Succeed())
			gomega.Expect(st.List(ctx, store.BindingPrefix)).To(gomega.BeEmpty())
		})

		ginkgo.DescribeTable("refuses a prefix keys are not built under",
			func(prefix string) {
				_, err := st.List(ctx, prefix)
				gomega.Expect(err).To(gomega.MatchError(store.ErrInvalidKey))
			},
			ginkgo.Entry("empty", ""),
			ginkgo.Entry("another prefix", "other/"),
			ginkgo.Entry("without its slash", "active"),
			ginkgo.Entry("a traversal", "active/../"),
			ginkgo.Entry("a parent", "../"),
			ginkgo.Entry("a key", Key(store.ActivePrefix, 1)),
		)
	})

	ginkgo.Describe("Delete", func() {
		ginkgo.It("removes the object", func() {
			put(key, "[]", store.Condition{})
			gomega.Expect(st.Delete(ctx, key)).To(gomega.Succeed())
			expectBody(key, "")
			gomega.Expect(st.List(ctx, store.ActivePrefix)).To(gomega.BeEmpty())
		})

		ginkgo.It("is idempotent: a missing object is not an error", func() {
			put(key, "[]", store.Condition{})
			gomega.Expect(st.Delete(ctx, key)).To(gomega.Succeed())
			gomega.Expect(st.Delete(ctx, key)).To(gomega.Succeed())
			gomega.Expect(st.Delete(ctx, Key(store.BindingPrefix, 42))).To(gomega.Succeed())
		})
	})

	ginkgo.DescribeTable("refuses keys that are not store keys, writing nothing",
		func(bad string) {
			_, _, err := st.Get(ctx, bad)
			gomega.Expect(err).To(gomega.MatchError(store.ErrInvalidKey))
			_, err = st.Put(ctx, bad, []byte("x"), store.Condition{})
			gomega.Expect(err).To(gomega.MatchError(store.ErrInvalidKey))
			_, err = st.Put(ctx, bad, []byte("x"), store.Condition{IfNoneMatch: true})
			gomega.Expect(err).To(gomega.MatchError(store.ErrInvalidKey))
			gomega.Expect(st.Delete(ctx, bad)).To(gomega.MatchError(store.ErrInvalidKey))
			if fx.RawKeys != nil {
				gomega.Expect(fx.RawKeys()).To(gomega.BeEmpty())
			}
		},
		ginkgo.Entry("a traversal", "active/../x.json"),
		ginkgo.Entry("a binding key that is not a GUID", "bindings/not-a-guid.json"),
		ginkgo.Entry("an encoded traversal", "active/%2e%2e.json"),
		ginkgo.Entry("the empty key", ""),
		ginkgo.Entry("another prefix", "other/"+GUID(1)+".json"),
		ginkgo.Entry("a traversal after a valid key", "active/"+GUID(1)+".json/../../x.json"),
		ginkgo.Entry("a leading slash", "/active/"+GUID(1)+".json"),
		ginkgo.Entry("a parent directory", "../active/"+GUID(1)+".json"),
		ginkgo.Entry("a missing suffix", "active/"+GUID(1)),
		ginkgo.Entry("a NUL byte", "active/"+GUID(1)+".json\x00"),
	)
}
