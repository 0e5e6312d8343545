package main

import (
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("limitMemory", func() {
	BeforeEach(func() {
		before := debug.SetMemoryLimit(-1)
		DeferCleanup(func() { debug.SetMemoryLimit(before) })
		debug.SetMemoryLimit(math.MaxInt64)
		gcBefore := debug.SetGCPercent(100)
		DeferCleanup(func() { debug.SetGCPercent(gcBefore) })
		// The library and limitMemory read the process's environment.
		for _, name := range []string{"GOMEMLIMIT", "GOGC", "AUTOMEMLIMIT"} {
			if value, ok := os.LookupEnv(name); ok {
				DeferCleanup(os.Setenv, name, value)
			} else {
				DeferCleanup(os.Unsetenv, name)
			}
			Expect(os.Unsetenv(name)).To(Succeed())
		}
	})

	gcPercent := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}

	container := func(limit uint64, err error) memlimit.Provider {
		return func() (uint64, error) { return limit, err }
	}

	It("sets 70% of the container's memory limit as the soft limit, and GOGC=200 under it", func() {
		limit, err := limitMemory(container(256<<20, nil))
		Expect(err).NotTo(HaveOccurred())
		Expect(limit).To(Equal(int64(256<<20) * 7 / 10))
		Expect(debug.SetMemoryLimit(-1)).To(Equal(limit))
		Expect(gcPercent()).To(Equal(200))
	})

	It("leaves GOGC to its setting when there is one", func() {
		Expect(os.Setenv("GOGC", "100")).To(Succeed())
		limit, err := limitMemory(container(256<<20, nil))
		Expect(err).NotTo(HaveOccurred())
		Expect(limit).NotTo(BeZero())
		Expect(gcPercent()).To(Equal(100))
	})

	It("keeps to GOMEMLIMIT when it is set, and leaves GOGC", func() {
		// The runtime reads GOMEMLIMIT at start.
		Expect(os.Setenv("GOMEMLIMIT", "100MiB")).To(Succeed())
		debug.SetMemoryLimit(100 << 20)
		called := false
		limit, err := limitMemory(func() (uint64, error) {
			called = true
			return 256 << 20, nil
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(limit).To(BeZero(), "no limit of the updater's")
		Expect(called).To(BeFalse(), "the container's limit read although GOMEMLIMIT is set")
		Expect(debug.SetMemoryLimit(-1)).To(Equal(int64(100 << 20)))
		Expect(gcPercent()).To(Equal(100))
	})

	DescribeTable("sets none, and leaves GOGC",
		func(env map[string]string, limit uint64, readErr, wantErr error) {
			for name, value := range env {
				Expect(os.Setenv(name, value)).To(Succeed())
			}
			set, err := limitMemory(container(limit, readErr))
			Expect(set).To(BeZero())
			if wantErr != nil {
				Expect(err).To(MatchError(wantErr))
			} else {
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(debug.SetMemoryLimit(-1)).To(Equal(int64(math.MaxInt64)))
			Expect(gcPercent()).To(Equal(100), "GOGC without a limit of the updater's")
		},
		Entry("when the container has no limit", nil, uint64(0), memlimit.ErrNoLimit, nil),
		Entry("when the container's limit cannot be read", nil, uint64(0), memlimit.ErrNoCgroup, memlimit.ErrNoCgroup),
		Entry("when AUTOMEMLIMIT=off", map[string]string{"AUTOMEMLIMIT": "off"}, uint64(256<<20), nil, nil),
	)
})
