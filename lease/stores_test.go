package lease_test

import (
	"context"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/seaweedfs"
	"github.com/alphagov/cf-app-discovery/lease"
	"github.com/alphagov/cf-app-discovery/store"
)

// newGofakes3Store is an S3 store on a fresh gofakes3 server.
func newGofakes3Store() lease.Store {
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	DeferCleanup(srv.Close)
	return newS3Store(srv.URL, "lease", "k", "s")
}

func newS3Store(endpoint, bucket, key, secret string) *store.S3Store {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")}
	st, err := store.NewS3(context.Background(), store.S3Options{Bucket: bucket, Endpoint: endpoint, AWSConfig: &cfg})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return st
}

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

// newSeaweedFSStore is an S3 store on a fresh bucket of the suite's
// SeaweedFS.
func newSeaweedFSStore() lease.Store {
	if weed == nil {
		Skip(weedMissing.Error())
	}
	st, _, err := weed.NewBucket(context.Background(), "lease")
	Expect(err).NotTo(HaveOccurred())
	return st
}
