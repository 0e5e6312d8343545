package main

import (
	"math"
	"runtime/debug"

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
	})

	gcPercent := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}

	env := func(vars map[string]string) func(string) string {
		return func(name string) string { return vars[name] }
	}

	DescribeTable("sets 70% of CF's memory quota as the soft limit",
		func(quota string, want int64) {
			Expect(limitMemory(env(map[string]string{"MEMORY_LIMIT": quota}))).To(Equal(want))
			Expect(debug.SetMemoryLimit(-1)).To(Equal(want))
			Expect(gcPercent()).To(Equal(200), "GOGC under the limit")
		},
		Entry("256m", "256m", int64(256<<20)*7/10),
		Entry("1G", "1G", int64(1<<30)*7/10),
		Entry("524288k", "524288k", int64(512<<20)*7/10),
	)

	DescribeTable("sets none",
		func(vars map[string]string) {
			Expect(limitMemory(env(vars))).To(BeZero())
			Expect(debug.SetMemoryLimit(-1)).To(Equal(int64(math.MaxInt64)))
			Expect(gcPercent()).To(Equal(100), "GOGC without a limit of the updater's")
		},
		Entry("outside CF", map[string]string{}),
		Entry("when GOMEMLIMIT sets one", map[string]string{"MEMORY_LIMIT": "256m", "GOMEMLIMIT": "100MiB"}),
		Entry("for a quota without a unit", map[string]string{"MEMORY_LIMIT": "256"}),
		Entry("for a quota that is not a number", map[string]string{"MEMORY_LIMIT": "lotsm"}),
		Entry("for a zero quota", map[string]string{"MEMORY_LIMIT": "0m"}),
	)

	It("leaves GOGC to its setting when there is one", func() {
		Expect(limitMemory(env(map[string]string{"MEMORY_LIMIT": "256m", "GOGC": "100"}))).NotTo(BeZero())
		Expect(gcPercent()).To(Equal(100))
	})
})
