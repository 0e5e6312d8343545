package store_test

import (
	"context"
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
)

var _ = Describe("DirStore shared by two processes", func() {
	// Two DirStores on one directory share nothing in memory, as two
	// processes would not: only the directory's lock orders their writes.
	It("lets exactly one of them create a key with IfNoneMatch", func() {
		root := GinkgoT().TempDir()
		var stores []*store.DirStore
		for range 2 {
			st, err := store.NewDir(root)
			Expect(err).NotTo(HaveOccurred())
			stores = append(stores, st)
		}
		ctx := context.Background()
		for round := range 200 {
			key := storetest.Key(store.BindingPrefix, round)
			var wins sync.WaitGroup
			var mu sync.Mutex
			created := 0
			for i := range 8 {
				wins.Add(1)
				go func() {
					defer GinkgoRecover()
					defer wins.Done()
					_, err := stores[i%2].Put(ctx, key, []byte(fmt.Sprint(i)), store.Condition{IfNoneMatch: true})
					if err == nil {
						mu.Lock()
						created++
						mu.Unlock()
						return
					}
					Expect(err).To(MatchError(store.ErrPreconditionFailed))
				}()
			}
			wins.Wait()
			Expect(created).To(Equal(1), "round %d", round)
		}
	})

	It("reads and writes the lease key, and no other key outside the layout", func() {
		st, err := store.NewDir(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		ctx := context.Background()
		etag, err := st.Put(ctx, store.LeaseKey, []byte(`{}`), store.Condition{IfNoneMatch: true})
		Expect(err).NotTo(HaveOccurred())
		body, got, err := st.Get(ctx, store.LeaseKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(body)).To(Equal(`{}`))
		Expect(got).To(Equal(etag))
		_, err = st.Put(ctx, "leases/other.json", []byte(`{}`), store.Condition{})
		Expect(err).To(MatchError(store.ErrInvalidKey))
	})
})
