package store_test

import (
	"context"
	"errors"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
)

// Where an app's target files are: "active", "inactive", "both" or "none".
const (
	inActive   = "active"
	inInactive = "inactive"
	inBoth     = "both"
	inNone     = "none"
)

var errBroken = errors.New("injected store failure")

var _ = Describe("Bucket", func() {
	var (
		mem    *storetest.Mem
		bucket *store.Bucket
		ctx    context.Context
		app    string
	)

	BeforeEach(func() {
		mem = storetest.NewMem()
		bucket = store.NewBucket(mem)
		ctx = context.Background()
		app = storetest.GUID(1)
	})

	activeKey := func() string { return storetest.Key(store.ActivePrefix, 1) }
	inactiveKey := func() string { return storetest.Key(store.InactivePrefix, 1) }
	// place says where the app's target files are now.
	place := func() string {
		keys := mem.Keys()
		active, inactive := false, false
		for _, k := range keys {
			active = active || k == activeKey()
			inactive = inactive || k == inactiveKey()
		}
		switch {
		case active && inactive:
			return inBoth
		case active:
			return inActive
		case inactive:
			return inInactive
		}
		return inNone
	}
	seed := func(where, body string) {
		for _, k := range map[string][]string{
			inActive: {activeKey()}, inInactive: {inactiveKey()}, inBoth: {activeKey(), inactiveKey()},
		}[where] {
			mem.PutRaw(k, []byte(body))
		}
	}
	target := func(started bool) store.Target {
		return store.Target{AppGUID: app, Started: started, Body: []byte("new")}
	}

	// The operations of the broker and the reconciler on one app.
	type operation func() error
	bind := func(started bool) operation {
		return func() error { return bucket.PutTarget(ctx, target(started)) }
	}
	reconcile := func(started bool) operation {
		return func() error {
			contents, err := bucket.List(ctx)
			if err != nil {
				return err
			}
			change, ok := bucket.PlanTarget(target(started), contents.TargetFiles(app))
			if !ok {
				return nil
			}
			return bucket.ApplyTarget(ctx, change)
		}
	}
	unbind := func() error { return bucket.RemoveTargets(ctx, app) }

	DescribeTable("places an app's target file: never lost, and in one place once an operation completes",
		func(before string, op operation, failing string, want string) {
			seed(before, "old")
			// Where the files are before each store operation, and at the end:
			// every state the bucket went through.
			var mu sync.Mutex
			states := []string{}
			failed := false
			mem.SetFail(func(o, _ string) error {
				mu.Lock()
				defer mu.Unlock()
				states = append(states, place())
				if o == failing && !failed {
					failed = true
					return errBroken
				}
				return nil
			})
			err := op()
			states = append(states, place())
			if before != inNone && want != inNone {
				Expect(states).NotTo(ContainElement(inNone), "the target was lost on the way")
			}
			if failing == "" {
				Expect(err).NotTo(HaveOccurred())
				Expect(place()).To(Equal(want))
			} else {
				Expect(err).To(MatchError(errBroken))
				Expect(place()).NotTo(Equal(inNone), "a failed operation lost the target")
				By("running the operation again once the store is back")
				Expect(op()).To(Succeed())
				Expect(place()).To(Equal(want))
			}
			switch want {
			case inActive:
				Expect(mem.Body(activeKey())).To(Equal("new"))
			case inInactive:
				Expect(mem.Body(inactiveKey())).To(Equal("new"))
			}
		},
		Entry("bind of a started app", inNone, bind(true), "", inActive),
		Entry("bind of a stopped app", inNone, bind(false), "", inInactive),
		Entry("bind of an app that stopped since its last bind", inActive, bind(false), "", inInactive),
		Entry("bind of an app that started since its last bind", inInactive, bind(true), "", inActive),
		Entry("bind over a file left in both places", inBoth, bind(true), "", inActive),
		Entry("unbind of a started app", inActive, operation(unbind), "", inNone),
		Entry("unbind of a stopped app", inInactive, operation(unbind), "", inNone),
		Entry("unbind of an app in both places", inBoth, operation(unbind), "", inNone),
		Entry("reconcile of a new binding", inNone, reconcile(true), "", inActive),
		Entry("reconcile of an app that stopped", inActive, reconcile(false), "", inInactive),
		Entry("reconcile of an app that started", inInactive, reconcile(true), "", inActive),
		Entry("reconcile of an app that changed", inActive, reconcile(true), "", inActive),
		Entry("reconcile of an app left in both places", inBoth, reconcile(false), "", inInactive),
		Entry("bind of a stopped app, the write failing", inActive, bind(false), storetest.OpPut, inInactive),
		Entry("bind of a stopped app, the removal failing halfway", inActive, bind(false), storetest.OpDelete, inInactive),
		Entry("reconcile of a stopped app, the write failing", inActive, reconcile(false), storetest.OpPut, inInactive),
		Entry("reconcile of a started app, the removal failing halfway", inInactive, reconcile(true), storetest.OpDelete, inActive),
		Entry("unbind, the removal failing", inActive, operation(unbind), storetest.OpDelete, inNone),
	)

	DescribeTable("writes a target file only when its bytes change",
		func(op func(started bool) operation) {
			seed(inActive, "new")
			mem.ResetOps()
			Expect(op(true)()).To(Succeed())
			Expect(mem.Ops()).NotTo(HaveKey(storetest.OpPut))
			Expect(mem.Body(activeKey())).To(Equal("new"))
		},
		Entry("on bind", bind),
		Entry("on reconcile", reconcile),
	)

	Describe("PlanTarget", func() {
		It("plans nothing, and the reconcile stores nothing, when the file is in place", func() {
			seed(inInactive, "new")
			contents, err := bucket.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			mem.ResetOps()
			_, ok := bucket.PlanTarget(target(false), contents.TargetFiles(app))
			Expect(ok).To(BeFalse())
			Expect(mem.Ops()).To(BeEmpty())
		})

		It("plans only the removal of a stale file in the other place", func() {
			seed(inBoth, "new")
			contents, err := bucket.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			change, ok := bucket.PlanTarget(target(true), contents.TargetFiles(app))
			Expect(ok).To(BeTrue())
			Expect(change.Write).To(BeFalse())
			Expect(change.RemoveOther).To(BeTrue())
		})

		// The broker acts between the reconciler's listing and its write.
		DescribeTable("does not undo what changed since the listing: the write fails its condition and removes nothing",
			func(before string, started bool, meanwhile func(), want string) {
				seed(before, "old")
				contents, err := bucket.List(ctx)
				Expect(err).NotTo(HaveOccurred())
				change, ok := bucket.PlanTarget(target(started), contents.TargetFiles(app))
				Expect(ok).To(BeTrue())
				meanwhile()
				Expect(bucket.ApplyTarget(ctx, change)).To(MatchError(store.ErrPreconditionFailed))
				Expect(place()).To(Equal(want))
			},
			Entry("an unbind removed the file", inActive, true, func() {
				Expect(bucket.RemoveTargets(ctx, app)).To(Succeed())
			}, inNone),
			Entry("a bind wrote the file", inNone, true, func() {
				Expect(bucket.PutTarget(ctx, store.Target{AppGUID: app, Started: true, Body: []byte("bound")})).To(Succeed())
			}, inActive),
			Entry("a bind rewrote the file", inActive, true, func() {
				Expect(bucket.PutTarget(ctx, store.Target{AppGUID: app, Started: true, Body: []byte("bound")})).To(Succeed())
			}, inActive),
		)
	})

	Context("when the store's ETags are not the MD5 of the content (SSE-KMS)", func() {
		// reconcileApp lists the bucket and places the app's target, and
		// says whether it wrote.
		reconcileApp := func(body string) bool {
			contents, err := bucket.List(ctx)
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			change, ok := bucket.PlanTarget(store.Target{AppGUID: app, Started: true, Body: []byte(body)}, contents.TargetFiles(app))
			if ok {
				ExpectWithOffset(1, bucket.ApplyTarget(ctx, change)).To(Succeed())
			}
			return change.Write
		}

		BeforeEach(func() {
			mem.SetOpaqueETags(true)
			// The broker's write, with an opaque ETag.
			Expect(store.NewBucket(mem).PutTarget(ctx, target(true))).To(Succeed())
		})

		It("rewrites a file once, then knows it holds the bytes without reading it", func() {
			Expect(reconcileApp("new")).To(BeTrue())
			mem.ResetOps()
			Expect(reconcileApp("new")).To(BeFalse())
			Expect(mem.Ops()).To(Equal(map[string]int{storetest.OpList: 3}))
		})

		It("still rewrites a file whose bytes change", func() {
			reconcileApp("new")
			Expect(reconcileApp("newer")).To(BeTrue())
			Expect(mem.Body(activeKey())).To(Equal("newer"))
		})

		It("rewrites a file someone else wrote since", func() {
			reconcileApp("new")
			_, err := mem.Put(ctx, activeKey(), []byte("new"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(reconcileApp("new")).To(BeTrue())
		})

		It("forgets the files that are gone: removed, moved, or no longer listed", func() {
			reconcileApp("new")
			other := storetest.GUID(2)
			contents, err := bucket.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			change, _ := bucket.PlanTarget(store.Target{AppGUID: other, Started: true, Body: []byte("x")}, contents.TargetFiles(other))
			Expect(bucket.ApplyTarget(ctx, change)).To(Succeed())
			Expect(bucket.Remembered()).To(Equal(2))

			Expect(bucket.RemoveTargets(ctx, app)).To(Succeed())
			Expect(bucket.Remembered()).To(Equal(1))
			Expect(mem.Delete(ctx, storetest.Key(store.ActivePrefix, 2))).To(Succeed())
			_, err = bucket.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(bucket.Remembered()).To(BeZero())
		})

		It("remembers nothing of a bind's writes, which it never lists", func() {
			Expect(bucket.PutTarget(ctx, target(false))).To(Succeed())
			Expect(bucket.Remembered()).To(BeZero())
		})

		It("remembers nothing on a store whose ETags are MD5s", func() {
			mem.SetOpaqueETags(false)
			Expect(reconcileApp("newer")).To(BeTrue())
			Expect(bucket.Remembered()).To(BeZero())
		})
	})

	Describe("List", func() {
		It("lists records and target files by GUID, with ETags and times, leaving strays out", func() {
			_, err := bucket.WriteBinding(ctx, store.Binding{BindingGUID: storetest.GUID(5), AppGUID: app}, store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(bucket.PutTarget(ctx, target(true))).To(Succeed())
			Expect(bucket.PutTarget(ctx, store.Target{AppGUID: storetest.GUID(2), Body: []byte("x")})).To(Succeed())
			mem.PutRaw("active/stray.json", []byte("x"))

			contents, err := bucket.List(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(contents.Bindings).To(HaveKeyWithValue(storetest.GUID(5), HaveField("Key", storetest.Key(store.BindingPrefix, 5))))
			Expect(contents.Active).To(HaveLen(1))
			Expect(contents.Active[app].ETag).To(Equal(store.ContentETag([]byte("new"))))
			Expect(contents.Active[app].LastModified).To(BeTemporally("~", time.Now(), time.Minute))
			Expect(contents.Inactive).To(HaveKey(storetest.GUID(2)))
			Expect(contents.TargetFiles(app).Active).NotTo(BeNil())
			Expect(contents.TargetFiles(app).Inactive).To(BeNil())
		})

		It("fails, naming the prefix, when a listing fails", func() {
			mem.SetFail(func(op, prefix string) error {
				if prefix == store.InactivePrefix {
					return errBroken
				}
				return nil
			})
			_, err := bucket.List(ctx)
			Expect(err).To(MatchError(errBroken))
			Expect(err).To(MatchError(ContainSubstring("listing inactive/")))
		})
	})

	Describe("binding records", func() {
		record := store.Binding{BindingGUID: storetest.GUID(5), AppGUID: storetest.GUID(1), PlanID: "plan", Source: store.SourceBroker}
		recordKey := storetest.Key(store.BindingPrefix, 5)

		It("writes a record under its binding's key and reads it back with its ETag", func() {
			etag, err := bucket.WriteBinding(ctx, record, store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(mem.Keys()).To(Equal([]string{recordKey}))
			got, err := bucket.ReadBinding(ctx, record.BindingGUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Binding).To(Equal(record))
			Expect(got.ETag).To(Equal(etag))
		})

		It("writes conditionally: creates once, replaces what was read", func() {
			etag, err := bucket.WriteBinding(ctx, record, store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			_, err = bucket.WriteBinding(ctx, record, store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			completed := record
			completed.InstanceGUID = storetest.GUID(6)
			_, err = bucket.WriteBinding(ctx, completed, store.Condition{IfMatch: etag})
			Expect(err).NotTo(HaveOccurred())
			_, err = bucket.WriteBinding(ctx, record, store.Condition{IfMatch: etag})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			got, err := bucket.ReadBinding(ctx, record.BindingGUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.InstanceGUID).To(Equal(storetest.GUID(6)))
		})

		It("reads a missing record as ErrNotFound, and deletes it again without error", func() {
			_, err := bucket.ReadBinding(ctx, record.BindingGUID)
			Expect(err).To(MatchError(store.ErrNotFound))
			Expect(bucket.DeleteBinding(ctx, record.BindingGUID)).To(Succeed())
		})

		It("deletes a record", func() {
			_, err := bucket.WriteBinding(ctx, record, store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			Expect(bucket.DeleteBinding(ctx, record.BindingGUID)).To(Succeed())
			Expect(mem.Keys()).To(BeEmpty())
		})

		DescribeTable("reads a record it cannot parse as ErrUnreadableRecord",
			func(body string) {
				mem.PutRaw(recordKey, []byte(body))
				_, err := bucket.ReadBinding(ctx, record.BindingGUID)
				Expect(err).To(MatchError(store.ErrUnreadableRecord))
				Expect(err).NotTo(MatchError(store.ErrNotFound))
				Expect(err).To(MatchError(ContainSubstring(recordKey)))
			},
			Entry("not JSON", "{not json"),
			Entry("no app", `{"binding_guid":"`+storetest.GUID(5)+`"}`),
			Entry("a path for an app", `{"binding_guid":"`+storetest.GUID(5)+`","app_guid":"../x"}`),
		)
	})

	Describe("instance records", func() {
		record := store.Instance{InstanceGUID: storetest.GUID(7), ServiceID: "service", PlanID: "plan",
			OrganizationGUID: storetest.GUID(8), SpaceGUID: storetest.GUID(9), Parameters: []byte(`{"a":1}`)}

		It("writes a record under its instance's key, reads it back, and deletes it", func() {
			etag, err := bucket.WriteInstance(ctx, record, store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(mem.Keys()).To(Equal([]string{storetest.Key(store.InstancePrefix, 7)}))
			got, err := bucket.ReadInstance(ctx, record.InstanceGUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ETag).To(Equal(etag))
			Expect(got.SameAs(record)).To(BeTrue())
			_, err = bucket.WriteInstance(ctx, record, store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(store.ErrPreconditionFailed))
			Expect(bucket.DeleteInstance(ctx, record.InstanceGUID)).To(Succeed())
			_, err = bucket.ReadInstance(ctx, record.InstanceGUID)
			Expect(err).To(MatchError(store.ErrNotFound))
			Expect(bucket.DeleteInstance(ctx, record.InstanceGUID)).To(Succeed())
		})

		It("reads a record it cannot parse as ErrUnreadableRecord", func() {
			mem.PutRaw(storetest.Key(store.InstancePrefix, 7), []byte(`{"instance_guid":"../x"}`))
			_, err := bucket.ReadInstance(ctx, record.InstanceGUID)
			Expect(err).To(MatchError(store.ErrUnreadableRecord))
		})

		DescribeTable("SameAs: every attribute but the time counts",
			func(change func(*store.Instance), same bool) {
				other := record
				change(&other)
				Expect(record.SameAs(other)).To(Equal(same))
			},
			Entry("the time", func(i *store.Instance) { i.CreatedAt = time.Unix(1, 0) }, true),
			Entry("parameters reordered and respaced", func(i *store.Instance) { i.Parameters = []byte(` { "a" : 1 } `) }, true),
			Entry("the service", func(i *store.Instance) { i.ServiceID = "other" }, false),
			Entry("the plan", func(i *store.Instance) { i.PlanID = "other" }, false),
			Entry("the org", func(i *store.Instance) { i.OrganizationGUID = storetest.GUID(10) }, false),
			Entry("the space", func(i *store.Instance) { i.SpaceGUID = storetest.GUID(10) }, false),
			Entry("the parameters", func(i *store.Instance) { i.Parameters = []byte(`{"a":2}`) }, false),
		)
	})

	DescribeTable("SameParameters",
		func(a, b string, same bool) {
			Expect(store.SameParameters([]byte(a), []byte(b))).To(Equal(same))
		},
		Entry("none and null", ``, `null`, true),
		Entry("none and an empty object", ``, `{}`, true),
		Entry("keys in another order", `{"a":1,"b":{"c":"d","e":[1,2]}}`, `{"b":{"e":[1,2],"c":"d"},"a":1}`, true),
		Entry("another value", `{"a":1}`, `{"a":2}`, false),
		Entry("another key", `{"a":1}`, `{"b":1}`, false),
		Entry("a key more", `{"a":1}`, `{"a":1,"b":1}`, false),
		Entry("some and none", `{"a":1}`, ``, false),
		Entry("a number written otherwise", `{"a":1}`, `{"a":1.0}`, false),
	)

	DescribeTable("HasTarget",
		func(where string, has bool) {
			seed(where, "x")
			Expect(bucket.HasTarget(ctx, app)).To(Equal(has))
		},
		Entry("in active/", inActive, true),
		Entry("in inactive/", inInactive, true),
		Entry("in both", inBoth, true),
		Entry("in neither", inNone, false),
	)

	It("refuses every GUID that is not one, before it reaches the store", func() {
		bad := "../" + app
		_, err := bucket.ReadBinding(ctx, bad)
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		_, err = bucket.WriteBinding(ctx, store.Binding{BindingGUID: bad, AppGUID: app}, store.Condition{})
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		Expect(bucket.DeleteBinding(ctx, bad)).To(MatchError(scrape.ErrInvalidGUID))
		_, err = bucket.ReadInstance(ctx, bad)
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		_, err = bucket.WriteInstance(ctx, store.Instance{InstanceGUID: bad}, store.Condition{})
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		Expect(bucket.DeleteInstance(ctx, bad)).To(MatchError(scrape.ErrInvalidGUID))
		_, err = bucket.HasTarget(ctx, bad)
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		Expect(bucket.PutTarget(ctx, store.Target{AppGUID: bad})).To(MatchError(scrape.ErrInvalidGUID))
		Expect(bucket.RemoveTargets(ctx, bad)).To(MatchError(scrape.ErrInvalidGUID))
		change, _ := bucket.PlanTarget(store.Target{AppGUID: bad}, store.TargetFiles{})
		Expect(bucket.ApplyTarget(ctx, change)).To(MatchError(scrape.ErrInvalidGUID))
		Expect(mem.Ops()).To(BeEmpty())
		Expect(mem.Keys()).To(BeEmpty())
	})
})
