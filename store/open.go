package store

import (
	"context"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/prometheus/client_golang/prometheus"
)

// Open returns the configured store, instrumented on reg.
func Open(ctx context.Context, c config.Store, reg prometheus.Registerer) (Store, error) {
	var s Store
	var err error
	if c.Path != "" {
		s, err = NewDir(c.Path)
	} else {
		o := S3Options{Bucket: c.Bucket, Region: c.Region, Endpoint: c.Endpoint}
		if c.AccessKeyID != "" {
			o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
		}
		s, err = NewS3(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	return Instrument(s, reg), nil
}
