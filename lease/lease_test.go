package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/lease"
	"github.com/alphagov/cf-app-discovery/store"
)

// period is the lease period of the table: the clock is a fake, so its
// length only sets the scale.
const period = 30 * time.Second

var errStoreDown = errors.New("store unreachable")

// flakyStore is one instance's way to the shared store, which can be cut.
type flakyStore struct {
	next lease.Store
	mu   sync.Mutex
	// mode: "" passes through; "down" fails every call before it reaches
	// the store; "hang" blocks every call until its context ends;
	// "lost-answer" applies a Put and then fails it, as a timeout after the
	// store wrote would.
	mode string
}

func (f *flakyStore) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

func (f *flakyStore) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mode
}

func (f *flakyStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	switch f.get() {
	case "down":
		return nil, "", errStoreDown
	case "hang":
		<-ctx.Done()
		return nil, "", ctx.Err()
	}
	return f.next.Get(ctx, key)
}

func (f *flakyStore) Put(ctx context.Context, key string, body []byte, cond store.Condition) (string, error) {
	switch f.get() {
	case "down":
		return "", errStoreDown
	case "hang":
		<-ctx.Done()
		return "", ctx.Err()
	case "lost-answer":
		if _, err := f.next.Put(ctx, key, body, cond); err != nil {
			return "", err
		}
		return "", errStoreDown
	}
	return f.next.Put(ctx, key, body, cond)
}

// table is the world of one entry: instances a, b and c sharing a store,
// with one fake monotonic clock and wall clocks that may be skewed.
type table struct {
	ctx       context.Context
	st        lease.Store
	now       time.Time
	instances map[string]*instance
}

type instance struct {
	lease *lease.Lease
	store *flakyStore
	skew  time.Duration
}

func newTable(st lease.Store) *table {
	t := &table{ctx: context.Background(), st: st, now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		instances: map[string]*instance{}}
	for _, name := range []string{"a", "b", "c"} {
		in := &instance{store: &flakyStore{next: st}}
		l, err := lease.New(lease.Options{
			Store: in.store, Holder: "updater-" + name, Duration: period,
			Clock:     func() time.Time { return t.now },
			WallClock: func() time.Time { return t.now.Add(in.skew) },
		})
		Expect(err).NotTo(HaveOccurred())
		in.lease = l
		t.instances[name] = in
	}
	return t
}

// record reads the lease object as it is.
func (t *table) record() lease.Record {
	body, _, err := t.st.Get(t.ctx, store.LeaseKey)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	var rec lease.Record
	ExpectWithOffset(2, json.Unmarshal(body, &rec)).To(Succeed())
	return rec
}

// step is one line of an entry.
type step func(t *table)

func acquire(who string, want bool) step {
	return func(t *table) {
		held, err := t.instances[who].lease.TryAcquire(t.ctx)
		ExpectWithOffset(2, err).NotTo(HaveOccurred(), "%s acquiring", who)
		ExpectWithOffset(2, held).To(Equal(want), "%s acquiring", who)
	}
}

// acquireFails is a TryAcquire whose store is unreachable.
func acquireFails(who string) step {
	return func(t *table) {
		held, err := t.instances[who].lease.TryAcquire(t.ctx)
		ExpectWithOffset(2, err).To(MatchError(errStoreDown))
		ExpectWithOffset(2, held).To(BeFalse())
	}
}

func renew(who string, want error) step {
	return func(t *table) {
		err := t.instances[who].lease.Renew(t.ctx)
		if want == nil {
			ExpectWithOffset(2, err).NotTo(HaveOccurred(), "%s renewing", who)
			return
		}
		ExpectWithOffset(2, err).To(MatchError(want), "%s renewing", who)
	}
}

func release(who string) step {
	return func(t *table) {
		ExpectWithOffset(2, t.instances[who].lease.Release(t.ctx)).To(Succeed())
	}
}

func after(d time.Duration) step {
	return func(t *table) { t.now = t.now.Add(d) }
}

func holds(who string, want bool) step {
	return func(t *table) {
		ExpectWithOffset(2, t.instances[who].lease.Held()).To(Equal(want), "%s holds", who)
	}
}

func storeIs(who, mode string) step {
	return func(t *table) { t.instances[who].store.set(mode) }
}

func skew(who string, d time.Duration) step {
	return func(t *table) { t.instances[who].skew = d }
}

func recordHolder(who string) step {
	return func(t *table) {
		ExpectWithOffset(2, t.record().Holder).To(Equal("updater-" + who))
	}
}

// writeObject replaces the lease object behind everyone's back, as an
// operator or another program could.
func writeObject(body string) step {
	return func(t *table) {
		_, err := t.st.Put(t.ctx, store.LeaseKey, []byte(body), store.Condition{})
		ExpectWithOffset(2, err).NotTo(HaveOccurred())
	}
}

// race has b and c try to take the lease at the same moment.
func race() step {
	return func(t *table) {
		var wg sync.WaitGroup
		results := make(chan bool, 2)
		for _, who := range []string{"b", "c"} {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				held, err := t.instances[who].lease.TryAcquire(t.ctx)
				Expect(err).NotTo(HaveOccurred())
				results <- held
			}()
		}
		wg.Wait()
		close(results)
		won := 0
		for held := range results {
			if held {
				won++
			}
		}
		ExpectWithOffset(2, won).To(Equal(1), "winners of the race")
	}
}

// repeat runs steps n times.
func repeat(n int, steps ...step) []step {
	var out []step
	for range n {
		out = append(out, steps...)
	}
	return out
}

func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch s := p.(type) {
		case step:
			out = append(out, s)
		case []step:
			out = append(out, s...)
		}
	}
	return out
}

// describeEdgeCases declares the table against the store newStore returns
// (a fresh, empty one per entry). After every step, at most one instance
// may consider itself the holder.
func describeEdgeCases(newStore func() lease.Store) {
	DescribeTable("edge cases",
		func(entry []step) {
			t := newTable(newStore())
			for i, s := range entry {
				s(t)
				holders := 0
				for _, in := range t.instances {
					if in.lease.Held() {
						holders++
					}
				}
				Expect(holders).To(BeNumerically("<=", 1), "after step %d", i+1)
			}
		},
		Entry("no lease: the first to try creates it, the others stand by",
			steps(acquire("a", true), recordHolder("a"), acquire("b", false), acquire("c", false))),
		Entry("a lease renewed in time is never taken over",
			steps(acquire("a", true), acquire("b", false),
				repeat(6, after(period/3), renew("a", nil), acquire("b", false)),
				holds("a", true), recordHolder("a"))),
		Entry("an expired lease is taken over once unchanged for a whole period on the taker's clock",
			steps(acquire("a", true), acquire("b", false),
				after(period-time.Millisecond), acquire("b", false),
				after(time.Millisecond), acquire("b", true), recordHolder("b"))),
		Entry("a holder that does not renew stops at two thirds of the period, before anyone may take over",
			steps(acquire("a", true), acquire("b", false),
				after(2*period/3-time.Millisecond), holds("a", true),
				after(time.Millisecond), holds("a", false), acquire("b", false),
				after(period/3), acquire("b", true))),
		Entry("renew after the deadline is refused, and the lease is not taken back from its new holder",
			steps(acquire("a", true), acquire("b", false), after(period), acquire("b", true),
				renew("a", lease.ErrNotHeld), acquire("a", false), recordHolder("b"), holds("b", true))),
		Entry("renew after someone else wrote the lease is refused as lost, and writes nothing",
			steps(acquire("a", true), after(period/3),
				writeObject(`{"holder":"operator","duration":"30s"}`),
				renew("a", lease.ErrLost), holds("a", false),
				func(t *table) { Expect(t.record().Holder).To(Equal("operator")) })),
		Entry("the store failing during renew: the holder keeps acting until its deadline only; the other takes over after",
			steps(acquire("a", true), acquire("b", false), after(period/3),
				storeIs("a", "down"), renew("a", errStoreDown), holds("a", true),
				after(period/4), renew("a", errStoreDown), holds("a", true),
				after(period/12), holds("a", false), renew("a", lease.ErrNotHeld),
				acquire("b", false), after(period/3), acquire("b", true),
				storeIs("a", ""), acquire("a", false), recordHolder("b"))),
		Entry("a renewal whose answer was lost is recognised as the holder's own on the next one",
			steps(acquire("a", true), after(period/3),
				storeIs("a", "lost-answer"), renew("a", errStoreDown),
				storeIs("a", ""), after(period/12), renew("a", nil), holds("a", true),
				acquire("b", false), after(period/3), renew("a", nil), after(period/3), renew("a", nil),
				after(period/3), acquire("b", false), holds("a", true))),
		Entry("clock skew: a taker whose wall clock is an hour ahead does not take a live lease",
			steps(skew("b", time.Hour), acquire("a", true), acquire("b", false),
				repeat(6, after(period/3), renew("a", nil), acquire("b", false)), holds("a", true))),
		Entry("clock skew: a holder whose wall clock is an hour behind keeps its lease",
			steps(skew("a", -time.Hour), acquire("a", true), acquire("b", false),
				repeat(6, after(period/3), renew("a", nil), acquire("b", false)), holds("a", true),
				func(t *table) { Expect(t.record().ExpiresAt).To(BeTemporally("<", t.now)) })),
		Entry("clock skew: a taker whose wall clock is an hour behind still takes a dead lease after one period",
			steps(skew("b", -time.Hour), acquire("a", true), acquire("b", false),
				after(period), acquire("b", true))),
		Entry("a released lease is taken at once",
			steps(acquire("a", true), acquire("b", false), release("a"), holds("a", false),
				acquire("b", true), recordHolder("b"))),
		Entry("an instance takes its own record back at once after its deadline, and the others wait again",
			steps(acquire("a", true), acquire("b", false), after(2*period/3), holds("a", false),
				acquire("a", true), after(period/3), acquire("b", false), holds("a", true))),
		Entry("a record with a longer period is waited out in full",
			steps(writeObject(`{"holder":"old-updater","duration":"1m0s"}`), acquire("a", false),
				after(period), acquire("a", false), after(period), acquire("a", true))),
		Entry("an unreadable record is taken over after one period",
			steps(writeObject(`not a lease`), acquire("a", false), after(period), acquire("a", true))),
		Entry("a standby that cannot read the store keeps what it saw before",
			steps(acquire("a", true), storeIs("a", "down"), acquire("b", false), storeIs("b", "down"),
				after(period/2), acquireFails("b"), storeIs("b", ""),
				after(period/2), acquire("b", true))),
		Entry("two takers at once: exactly one wins",
			steps(acquire("a", true), acquire("b", false), acquire("c", false), after(period), race())),
	)
}

var _ = Describe("Lease", func() {
	Describe("against a directory store", func() {
		describeEdgeCases(func() lease.Store {
			st, err := store.NewDir(GinkgoT().TempDir())
			Expect(err).NotTo(HaveOccurred())
			return st
		})
	})

	Describe("against gofakes3", func() {
		describeEdgeCases(newGofakes3Store)
	})

	Describe("against SeaweedFS", func() {
		describeEdgeCases(newSeaweedFSStore)
	})

	It("refuses options without a store, a holder or a period", func() {
		_, err := lease.New(lease.Options{Holder: "x", Duration: time.Second})
		Expect(err).To(HaveOccurred())
		_, err = lease.New(lease.Options{Store: &flakyStore{}, Duration: time.Second})
		Expect(err).To(HaveOccurred())
		_, err = lease.New(lease.Options{Store: &flakyStore{}, Holder: "x"})
		Expect(err).To(HaveOccurred())
	})

	It("names each instance uniquely", func() {
		Expect(lease.NewHolderID()).NotTo(Equal(lease.NewHolderID()))
	})
})
