package targets

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreConfig says where target files and binding records live: a local
// directory when Path is set, an S3 bucket otherwise.
type StoreConfig struct {
	Bucket   string
	Region   string
	Endpoint string
	Path     string
	// AccessKeyID, SecretAccessKey and SessionToken, when set, sign the S3
	// requests; otherwise the AWS SDK's usual sources do.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// OpenStore returns the configured store, instrumented on reg.
func OpenStore(ctx context.Context, c StoreConfig, reg prometheus.Registerer) (Store, error) {
	var s Store
	var err error
	if c.Path != "" {
		s, err = NewDirStore(c.Path)
	} else {
		o := S3Options{Bucket: c.Bucket, Region: c.Region, Endpoint: c.Endpoint}
		if c.AccessKeyID != "" {
			o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
		}
		s, err = NewS3Store(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	return NewInstrumentedStore(s, reg), nil
}
