package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// overlapStore records whether two operations on one app's target files
// were ever in flight at once.
type overlapStore struct {
	store.Store
	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
}

func (s *overlapStore) enter(key string) func() {
	if strings.HasPrefix(key, store.BindingPrefix) {
		return func() {}
	}
	app := key[strings.IndexByte(key, '/')+1:]
	s.mu.Lock()
	s.inFlight[app]++
	if s.inFlight[app] > 1 {
		s.overlaps++
	}
	s.mu.Unlock()
	// Give another operation every chance to arrive meanwhile.
	for range 20 {
		runtime.Gosched()
	}
	return func() {
		s.mu.Lock()
		s.inFlight[app]--
		s.mu.Unlock()
	}
}

func (s *overlapStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	defer s.enter(key)()
	return s.Store.Get(ctx, key)
}

func (s *overlapStore) Put(ctx context.Context, key string, body []byte, c store.Condition) (string, error) {
	defer s.enter(key)()
	return s.Store.Put(ctx, key, body, c)
}

func (s *overlapStore) Delete(ctx context.Context, key string) error {
	defer s.enter(key)()
	return s.Store.Delete(ctx, key)
}

var _ = Describe("Broker", func() {
	Context("when binds and unbinds of one app arrive at once", func() {
		const n = 24
		var (
			h        *harness
			overlaps *overlapStore
			statuses []int
		)
		id := func(i int) string { return fmt.Sprintf("22222222-2222-4222-8222-%012d", i) }

		BeforeEach(func() {
			h = newHarness()
			overlaps = &overlapStore{Store: h.st, inFlight: map[string]int{}}
			h.st = &failingStore{Store: overlaps}
			h.serve()
			// Half the bindings exist and are being deleted; half are new,
			// in the CF API and being created.
			for i := range n / 2 {
				Expect(h.bind(id(i), appGUID).status).To(Equal(http.StatusCreated))
				h.cf.setBinding(cfapi.Binding{GUID: id(i), AppGUID: appGUID, Deleting: true})
			}
			for i := n / 2; i < n; i++ {
				h.cf.setBinding(cfapi.Binding{GUID: id(i), AppGUID: appGUID})
			}
			overlaps.mu.Lock()
			overlaps.overlaps = 0
			overlaps.mu.Unlock()
		})

		JustBeforeEach(func() {
			statuses = make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					defer GinkgoRecover()
					if i < n/2 {
						statuses[i] = h.unbind(id(i)).status
					} else {
						statuses[i] = h.bind(id(i), appGUID).status
					}
				})
			}
			wg.Wait()
		})

		It("never lets two of them touch the app's target files at once", func() {
			Expect(statuses).To(HaveEach(BeElementOf(http.StatusOK, http.StatusCreated)))
			overlaps.mu.Lock()
			defer overlaps.mu.Unlock()
			Expect(overlaps.overlaps).To(BeZero())
		})

		It("leaves the new bindings' records and the app's target file", func() {
			Expect(h.files()).To(ContainElement("active/" + appGUID + ".json"))
			Expect(h.files()).To(HaveLen(1 + n/2))
		})
	})
})
