package store_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/seaweedfs"
	"github.com/alphagov/cf-app-discovery/store/storetest"
)

// weed is a SeaweedFS server shared by the suite, when its binary is
// built; weedMissing says why not.
var (
	weed        *seaweedfs.Server
	weedMissing error
)

var _ = BeforeSuite(func() {
	var err error
	weed, weedMissing, err = seaweedfs.StartIfBuilt(seaweedfs.Options{})
	Expect(err).NotTo(HaveOccurred())
	if weed != nil {
		DeferCleanup(weed.Stop)
	}
})

// newSeaweedFSFixture is the S3 store on a fresh bucket of the suite's
// SeaweedFS, which answers 404 to If-Match on a missing key as AWS does.
// A writer that loses a race there waits a second: a few rounds of
// contention are enough.
func newSeaweedFSFixture() storetest.Fixture {
	if weed == nil {
		Skip(weedMissing.Error())
	}
	ctx := context.Background()
	st, bucket, err := weed.NewBucket(ctx, "contract")
	Expect(err).NotTo(HaveOccurred())
	return storetest.Fixture{
		Store: st,
		PutRaw: func(key string, body []byte) {
			ExpectWithOffset(1, weed.PutObject(ctx, bucket, key, body)).To(Succeed())
		},
		RawKeys: func() []string {
			keys, err := weed.Keys(ctx, bucket)
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			return keys
		},
		ContendedRounds: 3,
	}
}
