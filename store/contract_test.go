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

	Describe("S3Store against gofakes3, which answers 412 to If-Match on a missing key", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			fx, _ := newS3Fixture(false)
			return fx
		})
	})

	Describe("S3Store against an S3 that answers 404 NoSuchKey to If-Match on a missing key, as AWS does", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			fx, _ := newS3Fixture(true)
			return fx
		})
	})

	Describe("S3Store against SeaweedFS", func() {
		storetest.DescribeContract(newSeaweedFSFixture)
	})

	Describe("storetest.Mem", func() {
		storetest.DescribeContract(func() storetest.Fixture {
			return storetest.NewMem().Fixture()
		})
	})
})
