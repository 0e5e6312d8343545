package httpsd_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/httpsd"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

var errS3 = errors.New("s3: 503 SlowDown")

var _ = Describe("View", func() {
	var e *endpoint
	ctx := context.Background()

	BeforeEach(func() {
		e = newEndpoint()
	})

	// served returns the groups a request without filters gets.
	served := func() []string {
		return get(e.handler, httpsd.Path).groups()
	}

	// expected returns the groups of the target files at keys, in order.
	expected := func(keys ...string) []string {
		var out []string
		for _, key := range keys {
			body, _, err := e.st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			out = append(out, canonicalGroups(body)...)
		}
		e.st.counts()
		return out
	}

	Context("before it has read the bucket once", func() {
		BeforeEach(func() {
			putApp(e.st, app(1, "o", "s", 2))
		})

		It("answers 503", func() {
			Expect(get(e.handler, httpsd.Path).status).To(Equal(http.StatusServiceUnavailable))
		})

		It("still answers 503 after a failed listing", func() {
			e.st.failList(errS3)
			Expect(e.view.Refresh(ctx)).To(MatchError(errS3))
			Expect(get(e.handler, httpsd.Path).status).To(Equal(http.StatusServiceUnavailable))
		})

		It("still answers 503 after a refresh that could not read every file, rather than serve part of the bucket", func() {
			second := putApp(e.st, app(2, "o", "s", 1))
			e.st.failGet(second, errS3)
			Expect(e.view.Refresh(ctx)).To(MatchError(errS3))
			Expect(get(e.handler, httpsd.Path).status).To(Equal(http.StatusServiceUnavailable))

			e.st.failGet(second, nil)
			Expect(e.view.Refresh(ctx)).To(Succeed())
			Expect(served()).To(HaveLen(3))
		})

		It("reports its age since it was made", func() {
			e.clock.advance(90 * time.Second)
			Expect(metric(e.reg, "cf_app_discovery_httpsd_view_age_seconds")).To(Equal(90.0))
		})
	})

	It("serves the groups of every active/ file of a mixed bucket, the same as the files, and no inactive/ one", func() {
		dir := GinkgoT().TempDir()
		bucket, err := store.NewDir(dir)
		Expect(err).NotTo(HaveOccurred())
		withPath := app(3, "org-b", "space-1", 1)
		withPath.Routes[0].Path = "/admin"
		venerable := app(4, "org-b", "space-2", 2)
		venerable.Name += "-venerable"
		stopped := app(5, "org-a", "space-1", 2)
		stopped.State = "STOPPED"
		for _, a := range []targets.App{app(1, "org-a", "space-1", 3), app(2, "org-a", "space-2", 0), withPath, venerable, stopped} {
			key, err := store.TargetKey(a.GUID, a.Started())
			Expect(err).NotTo(HaveOccurred())
			_, err = bucket.Put(ctx, key, targets.Render(a, "paas.example"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
		}
		// A file as the Ruby service wrote it: other spacing, other key order.
		ruby := `[{"labels":{"job":"ruby-app","space":"s","org":"o","instance":"` + guid(6) + `:0",` +
			`"__param_cf_app_guid":"` + guid(6) + `","__param_cf_app_instance_index":"0","__param_cf_app_instance":"` + guid(6) + `:0"},` +
			` "targets": ["ruby-app.paas.example"]}]`
		_, err = bucket.Put(ctx, store.ActivePrefix+guid(6)+".json", []byte(ruby), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		record, err := store.Binding{BindingGUID: guid(7), AppGUID: guid(1), PlanID: "plan"}.Marshal()
		Expect(err).NotTo(HaveOccurred())
		_, err = bucket.Put(ctx, store.BindingPrefix+guid(7)+".json", record, store.Condition{})
		Expect(err).NotTo(HaveOccurred())

		view := httpsd.NewView(httpsd.ViewOptions{Store: bucket})
		handler := httpsd.NewHandler(view, httpsd.Credentials{Username: sdUser, Password: sdPassword}, nil)
		Expect(view.Refresh(ctx)).To(Succeed())

		var files []string
		paths, err := filepath.Glob(filepath.Join(dir, "active", "*.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(paths).To(HaveLen(5))
		for _, p := range paths {
			body, err := os.ReadFile(p)
			Expect(err).NotTo(HaveOccurred())
			files = append(files, canonicalGroups(body)...)
		}
		answer := get(handler, httpsd.Path)
		Expect(sorted(answer.groups())).To(Equal(sorted(files)))
		Expect(answer.groups()).To(HaveLen(3 + 0 + 1 + 2 + 1))
		Expect(string(answer.body)).NotTo(ContainSubstring(guid(5)), "the stopped app's groups")
		Expect(string(answer.body)).NotTo(ContainSubstring(guid(7)), "the binding record")
	})

	Context("once it has read the bucket", func() {
		var keys []string

		BeforeEach(func() {
			keys = nil
			for n := 1; n <= 5; n++ {
				keys = append(keys, putApp(e.st, app(n, "o", "s", 2)))
			}
			Expect(e.view.Refresh(ctx)).To(Succeed())
			lists, gets := e.st.counts()
			Expect(lists).To(Equal(1))
			Expect(gets).To(HaveLen(5))
			Expect(metric(e.reg, "cf_app_discovery_httpsd_groups")).To(Equal(10.0))
		})

		It("serves the groups in key order", func() {
			Expect(served()).To(Equal(expected(keys...)))
		})

		It("only lists the bucket when nothing changed", func() {
			before := get(e.handler, httpsd.Path).body
			Expect(e.view.Refresh(ctx)).To(Succeed())
			lists, gets := e.st.counts()
			Expect(lists).To(Equal(1))
			Expect(gets).To(BeEmpty())
			Expect(get(e.handler, httpsd.Path).body).To(Equal(before))
		})

		It("shows a changed file after one refresh that reads only that file", func() {
			putApp(e.st, app(3, "o", "s", 3))
			Expect(e.view.Refresh(ctx)).To(Succeed())
			lists, gets := e.st.counts()
			Expect(lists).To(Equal(1))
			Expect(gets).To(Equal(map[string]int{keys[2]: 1}))
			Expect(served()).To(Equal(expected(keys...)))
			Expect(served()).To(HaveLen(11))
			Expect(metric(e.reg, "cf_app_discovery_httpsd_groups")).To(Equal(11.0))
		})

		It("shows a new file after one refresh that reads only that file", func() {
			added := putApp(e.st, app(6, "o", "s", 1))
			Expect(e.view.Refresh(ctx)).To(Succeed())
			_, gets := e.st.counts()
			Expect(gets).To(Equal(map[string]int{added: 1}))
			Expect(served()).To(Equal(expected(append(keys, added)...)))
		})

		It("drops a deleted file, or one moved to inactive/, without reading anything", func() {
			e.st.remove(keys[0])
			stopped := app(2, "o", "s", 2)
			stopped.State = "STOPPED"
			e.st.remove(keys[1])
			putApp(e.st, stopped)
			Expect(e.view.Refresh(ctx)).To(Succeed())
			_, gets := e.st.counts()
			Expect(gets).To(BeEmpty())
			Expect(served()).To(Equal(expected(keys[2:]...)))
			Expect(metric(e.reg, "cf_app_discovery_httpsd_groups")).To(Equal(6.0))
		})

		It("drops a file deleted between its listing and its read, as no failure", func() {
			putApp(e.st, app(1, "o", "s", 3))
			e.st.failGet(keys[0], fmt.Errorf("get: %w", store.ErrNotFound))
			Expect(e.view.Refresh(ctx)).To(Succeed())
			Expect(served()).To(Equal(expected(keys[1:]...)))
		})

		Context("when listing the bucket fails", func() {
			var before []byte

			BeforeEach(func() {
				before = get(e.handler, httpsd.Path).body
				e.st.remove(keys[0])
				putApp(e.st, app(2, "o", "s", 3))
				e.st.failList(errS3)
				e.clock.advance(45 * time.Second)
				Expect(e.view.Refresh(ctx)).To(MatchError(errS3))
			})

			It("keeps serving the last good view, with its age", func() {
				a := get(e.handler, httpsd.Path)
				Expect(a.status).To(Equal(http.StatusOK))
				Expect(a.body).To(Equal(before))
				Expect(a.header.Get(httpsd.AgeHeader)).To(Equal("45"))
				Expect(metric(e.reg, "cf_app_discovery_httpsd_view_age_seconds")).To(Equal(45.0))
				Expect(metric(e.reg, "cf_app_discovery_httpsd_refresh_errors_total", "step", "list")).To(Equal(1.0))
				Expect(metric(e.reg, "cf_app_discovery_httpsd_groups")).To(Equal(10.0))
			})

			It("catches up, and its age starts again, once the bucket answers", func() {
				e.st.failList(nil)
				Expect(e.view.Refresh(ctx)).To(Succeed())
				a := get(e.handler, httpsd.Path)
				Expect(a.header.Get(httpsd.AgeHeader)).To(Equal("0"))
				Expect(a.groups()).To(Equal(expected(keys[1:]...)))
			})
		})

		Context("when reading a changed file fails", func() {
			var old []string

			BeforeEach(func() {
				old = expected(keys[1])
				putApp(e.st, app(2, "o", "s", 3))
				putApp(e.st, app(4, "o", "s", 1))
				e.st.failGet(keys[1], errS3)
				e.clock.advance(20 * time.Second)
				Expect(e.view.Refresh(ctx)).To(MatchError(errS3))
			})

			It("keeps that file's previous version and applies the other changes", func() {
				a := get(e.handler, httpsd.Path)
				Expect(a.groups()).To(Equal(slices.Concat(expected(keys[0]), old, expected(keys[2:]...))))
				Expect(a.header.Get(httpsd.AgeHeader)).To(Equal("20"))
				Expect(metric(e.reg, "cf_app_discovery_httpsd_refresh_errors_total", "step", "read")).To(Equal(1.0))
			})

			It("reads that file again at the next refresh, and only that file", func() {
				e.st.counts()
				e.st.failGet(keys[1], nil)
				Expect(e.view.Refresh(ctx)).To(Succeed())
				_, gets := e.st.counts()
				Expect(gets).To(Equal(map[string]int{keys[1]: 1}))
				Expect(served()).To(Equal(expected(keys...)))
			})
		})

		It("serves the others while a new file cannot be read, and adds it once it can", func() {
			added := putApp(e.st, app(6, "o", "s", 1))
			e.st.failGet(added, errS3)
			Expect(e.view.Refresh(ctx)).To(MatchError(errS3))
			Expect(served()).To(Equal(expected(keys...)))
			e.st.failGet(added, nil)
			Expect(e.view.Refresh(ctx)).To(Succeed())
			Expect(served()).To(Equal(expected(append(keys, added)...)))
		})

		DescribeTable("leaves out a malformed file, counted once, and serves the rest",
			func(body string) {
				e.st.put(keys[2], []byte(body))
				Expect(e.view.Refresh(ctx)).To(Succeed())
				Expect(served()).To(Equal(expected(keys[0], keys[1], keys[3], keys[4])))
				Expect(metric(e.reg, "cf_app_discovery_httpsd_malformed_files_total")).To(Equal(1.0))

				e.st.counts()
				Expect(e.view.Refresh(ctx)).To(Succeed())
				_, gets := e.st.counts()
				Expect(gets).To(BeEmpty(), "a malformed version is not read again")
				Expect(metric(e.reg, "cf_app_discovery_httpsd_malformed_files_total")).To(Equal(1.0))
			},
			Entry("not JSON", `[{"targets": ["a"]`),
			Entry("an object, not an array", `{"targets": ["a"], "labels": {}}`),
			Entry("null", `null`),
			Entry("a key Prometheus refuses", `[{"targets": ["a"], "labels": {}, "extra": 1}]`),
			Entry("a group that is null", `[{"targets": ["a"], "labels": {}}, null]`),
			Entry("a group without targets", `[{"labels": {"job": "a"}}]`),
			Entry("an invalid label name", `[{"targets": ["a"], "labels": {"bad-name": "x"}}]`),
			Entry("a label value that is not a string", `[{"targets": ["a"], "labels": {"job": 1}}]`),
			Entry("data after the array", `[] []`),
		)

		It("serves an app scaled to 0 as no groups, and a file without labels as empty labels", func() {
			putApp(e.st, app(1, "o", "s", 0))
			e.st.put(keys[1], []byte(`[{"targets": ["x.example.com"]}]`))
			Expect(e.view.Refresh(ctx)).To(Succeed())
			groups := served()
			Expect(groups).To(HaveLen(1 + 6))
			Expect(groups[0]).To(Equal(`{"labels":{},"targets":["x.example.com"]}`))
		})
	})

	It("keeps characters the target files do not escape as they are", func() {
		a := app(1, "<org & co>", "s", 1)
		putApp(e.st, a)
		Expect(e.view.Refresh(ctx)).To(Succeed())
		Expect(string(get(e.handler, httpsd.Path).body)).To(ContainSubstring(`"org":"<org & co>"`))
	})

	Describe("Run", func() {
		It("refreshes every interval until its context ends", func() {
			putApp(e.st, app(1, "o", "s", 1))
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				e.view.Run(runCtx, 5*time.Millisecond)
				close(done)
			}()
			Eventually(func() int { return get(e.handler, httpsd.Path).status }).Should(Equal(http.StatusOK))
			putApp(e.st, app(2, "o", "s", 1))
			Eventually(func() int { return len(get(e.handler, httpsd.Path).groups()) }).Should(Equal(2))
			cancel()
			Eventually(done).Should(BeClosed())
		})
	})
})
