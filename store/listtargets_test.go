package store_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
)

var _ = Describe("Bucket.ListTargets", func() {
	var (
		mem    *storetest.Mem
		bucket *store.Bucket
		ctx    context.Context
	)

	BeforeEach(func() {
		mem = storetest.NewMem()
		bucket = store.NewBucket(mem)
		ctx = context.Background()
		mem.PutRaw(storetest.Key(store.ActivePrefix, 1), []byte("[1]"))
		mem.PutRaw(storetest.Key(store.InactivePrefix, 2), []byte("[2]"))
		mem.PutRaw(storetest.Key(store.ActivePrefix, 3), []byte("[3]"))
		mem.PutRaw(storetest.Key(store.InactivePrefix, 3), []byte("[3]"))
		mem.PutRaw(storetest.Key(store.BindingPrefix, 1), []byte("{}"))
		mem.PutRaw(storetest.Key(store.ActivePrefix, 9), []byte("[9]"))
	})

	It("shows the target files of the apps asked for as List does, by reading them", func() {
		apps := []string{storetest.GUID(1), storetest.GUID(2), storetest.GUID(3), storetest.GUID(4)}
		got, err := bucket.ListTargets(ctx, apps)
		Expect(err).NotTo(HaveOccurred())
		listed, err := bucket.List(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, app := range apps {
			want := listed.TargetFiles(app)
			files := got.TargetFiles(app)
			Expect(files.Active == nil).To(Equal(want.Active == nil), app)
			Expect(files.Inactive == nil).To(Equal(want.Inactive == nil), app)
			if want.Active != nil {
				Expect(files.Active.Key).To(Equal(want.Active.Key))
				Expect(files.Active.ETag).To(Equal(want.Active.ETag))
			}
			if want.Inactive != nil {
				Expect(files.Inactive.Key).To(Equal(want.Inactive.Key))
				Expect(files.Inactive.ETag).To(Equal(want.Inactive.ETag))
			}
		}
		Expect(got.Active).NotTo(HaveKey(storetest.GUID(9)), "only the apps asked for")
		Expect(got.Bindings).To(BeNil())
	})

	It("reads, and lists nothing", func() {
		mem.ResetOps()
		_, err := bucket.ListTargets(ctx, []string{storetest.GUID(1), storetest.GUID(2)})
		Expect(err).NotTo(HaveOccurred())
		Expect(mem.Ops()).To(Equal(map[string]int{storetest.OpGet: 4}))
	})

	It("fails when a read fails", func() {
		mem.SetFail(func(op, _ string) error {
			if op == storetest.OpGet {
				return errBroken
			}
			return nil
		})
		_, err := bucket.ListTargets(ctx, []string{storetest.GUID(1)})
		Expect(err).To(MatchError(errBroken))
	})

	It("refuses a string that is not a GUID", func() {
		_, err := bucket.ListTargets(ctx, []string{"../x"})
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
	})

	It("lists the records alone", func() {
		records, err := bucket.ListBindings(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(records).To(HaveLen(1))
		Expect(records).To(HaveKey(storetest.GUID(1)))
	})
})
