package store_test

import (
	. "github.com/onsi/ginkgo/v2"

	"github.com/alphagov/cf-app-discovery/store/storetest"
)

var _ = Describe("The Store contract", func() {
	Describe("DirStore", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			fx, _ := newDirFixture()
			return fx
		})
	})

	Describe("S3Store against gofakes3", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			fx, _ := newS3Fixture()
			return fx
		})
	})

	Describe("storetest.Mem", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			return storetest.NewMem().Fixture()
		})
	})
})
