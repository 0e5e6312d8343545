package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Options configures NewS3.
type S3Options struct {
	// Bucket is the bucket holding the objects (BUCKET_NAME). Required.
	Bucket string
	// Region is the bucket's region (AWS_REGION). When empty, the SDK's
	// usual sources are read; with an Endpoint and no region at all,
	// us-east-1 is used for signing, as S3-compatible servers expect.
	Region string
	// Endpoint is the base URL of an S3-compatible server (S3_ENDPOINT),
	// addressed path-style. Empty means AWS S3.
	Endpoint string
	// HTTPClient, when set, makes every request; the SDK's default otherwise.
	HTTPClient *http.Client
	// Credentials, when set, sign the requests instead of the credentials
	// the SDK's default configuration finds.
	Credentials aws.CredentialsProvider
	// AWSConfig, when set, is used instead of loading the SDK's default
	// configuration (environment, shared files, instance role): tests pass
	// static credentials with it.
	AWSConfig *aws.Config
	// Timeout bounds one Get, Put or Delete and each page of a List,
	// retries included (default 10s), so that a hung S3 cannot hang a bind.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one request (default: the SDK's,
	// 3).
	MaxAttempts int
	// PageSize is the number of keys asked for per ListObjectsV2 page
	// (default and maximum 1000).
	PageSize int32
}

const (
	defaultS3Timeout  = 10 * time.Second
	defaultS3PageSize = 1000
	// signingRegion is what S3-compatible servers expect when no region is
	// configured.
	signingRegion = "us-east-1"
)

// S3Store is the Store kept in an S3 bucket (docs/design.md, "The bucket"). Its methods are safe
// for concurrent use.
type S3Store struct {
	client   *s3.Client
	bucket   string
	timeout  time.Duration
	pageSize int32
}

// NewS3 builds the S3 client. Without o.AWSConfig it reads the SDK's
// default configuration, credentials included, from the environment.
func NewS3(ctx context.Context, o S3Options) (*S3Store, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3 store: a bucket name is required")
	}
	var cfg aws.Config
	if o.AWSConfig != nil {
		cfg = *o.AWSConfig
	} else {
		var loadOpts []func(*config.LoadOptions) error
		if o.Region != "" {
			loadOpts = append(loadOpts, config.WithRegion(o.Region))
		}
		if o.Credentials != nil {
			loadOpts = append(loadOpts, config.WithCredentialsProvider(o.Credentials))
		}
		loaded, err := config.LoadDefaultConfig(ctx, loadOpts...)
		if err != nil {
			return nil, fmt.Errorf("s3 store: loading the AWS configuration: %w", err)
		}
		cfg = loaded
	}
	if o.Region != "" {
		cfg.Region = o.Region
	}
	if cfg.Region == "" {
		if o.Endpoint == "" {
			return nil, errors.New("s3 store: a region is required")
		}
		cfg.Region = signingRegion
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
		}
		if o.HTTPClient != nil {
			so.HTTPClient = o.HTTPClient
		}
		if o.MaxAttempts > 0 {
			so.RetryMaxAttempts = o.MaxAttempts
		}
		// Checksums the SDK would add by default (CRC32 trailers in
		// aws-chunked bodies) are not understood by every S3-compatible
		// server; Put sends Content-MD5 instead.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &S3Store{client: client, bucket: o.Bucket, timeout: o.Timeout, pageSize: o.PageSize}
	if s.timeout <= 0 {
		s.timeout = defaultS3Timeout
	}
	if s.pageSize <= 0 || s.pageSize > defaultS3PageSize {
		s.pageSize = defaultS3PageSize
	}
	return s, nil
}

// Get reads an object with GetObject.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := CheckKey(key); err != nil {
		return nil, "", fmt.Errorf("s3 get: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, "", fmt.Errorf("s3 get %s: %w", key, ErrNotFound)
		}
		return nil, "", fmt.Errorf("s3 get %s: %w", key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("s3 get %s: reading the body: %w", key, err)
	}
	return body, etagOr(out.ETag, body), nil
}

// Put writes an object with PutObject, sending If-Match or
// If-None-Match: * for its Condition and Content-MD5 so that S3 refuses a
// corrupted body. Every answer that says the condition failed (412, 409,
// or 404 to If-Match) gives ErrPreconditionFailed.
func (s *S3Store) Put(ctx context.Context, key string, body []byte, cond Condition) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("s3 put: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sum := md5.Sum(body)
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	if cond.IfMatch != "" {
		in.IfMatch = aws.String(quoteETag(cond.IfMatch))
	}
	if cond.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		// AWS and SeaweedFS answer If-Match on a missing key with 404
		// NoSuchKey, not 412: the condition failed all the same.
		if isPreconditionFailed(err) || cond.IfMatch != "" && isNotFound(err) {
			return "", fmt.Errorf("s3 put %s: %w: %w", key, ErrPreconditionFailed, err)
		}
		return "", fmt.Errorf("s3 put %s: %w", key, err)
	}
	if out.ETag == nil || *out.ETag == "" {
		return hex.EncodeToString(sum[:]), nil
	}
	return normaliseETag(*out.ETag), nil
}

// Delete removes an object with DeleteObject. S3 answers a missing object
// with success, and so does Delete.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("s3 delete: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	return nil
}

// List reads every page of ListObjectsV2 under prefix, which must be a
// ValidPrefix. Objects whose keys ParseKey refuses (stray uploads) are left
// out.
func (s *S3Store) List(ctx context.Context, prefix string) ([]Object, error) {
	if !ValidPrefix(prefix) {
		return nil, fmt.Errorf("s3 list: prefix %.80q: %w", prefix, ErrInvalidKey)
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: &prefix,
	}, func(po *s3.ListObjectsV2PaginatorOptions) {
		po.Limit = s.pageSize
		po.StopOnDuplicateToken = true
	})
	var objects []Object
	for pages.HasMorePages() {
		page, err := s.listPage(ctx, pages)
		if err != nil {
			return nil, fmt.Errorf("s3 list %s: %w", prefix, err)
		}
		for _, c := range page.Contents {
			key := aws.ToString(c.Key)
			if p, _, err := ParseKey(key); err != nil || p != prefix {
				continue
			}
			objects = append(objects, Object{
				Key:          key,
				ETag:         normaliseETag(aws.ToString(c.ETag)),
				LastModified: aws.ToTime(c.LastModified),
			})
		}
	}
	slices.SortFunc(objects, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objects, nil
}

func (s *S3Store) listPage(ctx context.Context, pages *s3.ListObjectsV2Paginator) (*s3.ListObjectsV2Output, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return pages.NextPage(ctx)
}

func isNotFound(err error) bool {
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound") {
		return true
	}
	return statusCode(err) == http.StatusNotFound && !isBucketMissing(err)
}

// isBucketMissing keeps a missing bucket (a configuration error) from
// reading as a missing object.
func isBucketMissing(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket"
}

// isPreconditionFailed recognises S3's two answers to a failed conditional
// write: 412 when the condition does not hold, 409 when a concurrent
// conditional write to the same key won.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return statusCode(err) == http.StatusPreconditionFailed
}

func statusCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.HTTPStatusCode()
	}
	return 0
}

// normaliseETag strips the quotes S3 puts around ETags.
func normaliseETag(etag string) string {
	return strings.Trim(etag, `"`)
}

func quoteETag(etag string) string {
	return `"` + normaliseETag(etag) + `"`
}

func etagOr(etag *string, body []byte) string {
	if e := normaliseETag(aws.ToString(etag)); e != "" {
		return e
	}
	return ContentETag(body)
}
