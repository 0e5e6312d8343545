// Package benchkit holds what the benchmark programs under acceptance/bench
// share: an S3-compatible server that counts its operations, the binding
// records a broker would have written, and a process's CPU time and memory
// as Linux reports them.
package benchkit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/store"
)

// Credentials are the S3 credentials the benchmarks' programs are given.
const (
	AccessKeyID     = "bench"
	SecretAccessKey = "bench"
	Region          = "us-east-1"
)

// S3 is an in-memory S3-compatible server (gofakes3) that counts requests
// by operation: LIST, GET, HEAD, PUT, DELETE.
type S3 struct {
	server  *httptest.Server
	handler http.Handler
	// Ignore, when set, leaves requests for which it is true uncounted.
	ignore func(*http.Request) bool
	mu     sync.Mutex
	ops    map[string]int
}

// NewS3 starts the server on loopback. Requests for which ignore is true
// (nil: none) are served but not counted.
func NewS3(ignore func(*http.Request) bool) *S3 {
	s := &S3{handler: gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server(), ignore: ignore, ops: map[string]int{}}
	s.server = httptest.NewServer(s)
	return s
}

// URL is the server's endpoint (S3_ENDPOINT).
func (s *S3) URL() string { return s.server.URL }

// Close stops the server.
func (s *S3) Close() { s.server.Close() }

// ServeHTTP counts r, then serves it.
func (s *S3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.ignore == nil || !s.ignore(r) {
		op := r.Method
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			op = "LIST"
		}
		s.mu.Lock()
		s.ops[op]++
		s.mu.Unlock()
	}
	s.handler.ServeHTTP(w, r)
}

// Reset sets every count to zero.
func (s *S3) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = map[string]int{}
}

// Count is how many requests of operation op were counted.
func (s *S3) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// String lists the counts, e.g. "LIST 11, GET 0, HEAD 0, PUT 0, DELETE 0".
func (s *S3) String() string {
	var parts []string
	for _, op := range []string{"LIST", "GET", "HEAD", "PUT", "DELETE"} {
		parts = append(parts, fmt.Sprintf("%s %d", op, s.Count(op)))
	}
	return strings.Join(parts, ", ")
}

// Store is the project's S3 store over bucket on this server. The bucket
// exists when it returns, as it would on AWS: gofakes3 creates it on the
// first request, and concurrent first requests can race that creation.
func (s *S3) Store(ctx context.Context, bucket string) (*store.S3Store, error) {
	creds := aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")}
	st, err := store.NewS3(ctx, store.S3Options{Bucket: bucket, Endpoint: s.URL(), AWSConfig: &creds})
	if err != nil {
		return nil, err
	}
	if _, err := st.List(ctx, store.ActivePrefix); err != nil {
		return nil, err
	}
	return st, nil
}

// SeedRecords writes the binding records a broker would have written for
// bindings, 16 at a time.
func SeedRecords(ctx context.Context, st store.Store, bindings []fakecf.Binding) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, b := range bindings {
		g.Go(func() error {
			key, err := store.BindingKey(b.GUID)
			if err != nil {
				return err
			}
			body, err := store.Binding{BindingGUID: b.GUID, AppGUID: b.AppGUID, PlanID: "plan", CreatedAt: b.CreatedAt, Source: store.SourceBroker}.Marshal()
			if err != nil {
				return err
			}
			_, err = st.Put(ctx, key, body, store.Condition{})
			return err
		})
	}
	return g.Wait()
}

// CPUTime is a live process's user and system time so far, from
// /proc/<pid>/stat (clock ticks of 10 ms on Linux), or 0.
func CPUTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// Memory is a live process's resident set size and its peak (VmRSS,
// VmHWM), in KiB, or zeros.
func Memory(pid int) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb
		case "VmHWM":
			peak = kb
		}
	}
	return rss, peak
}

// Env is the environment of a broker or target updater run against the
// fake CF API at cfURL and bucket on this server; the caller adds its
// plan and program settings.
func (s *S3) Env(cfURL, bucket string) []string {
	return append(os.Environ(),
		"API_ENDPOINT="+cfURL,
		"UAA_USERNAME="+fakecf.DefaultUsername, "UAA_PASSWORD="+fakecf.DefaultPassword,
		"PAAS_DOMAIN=apps.example.com",
		"BUCKET_NAME="+bucket, "AWS_REGION="+Region, "S3_ENDPOINT="+s.URL(),
		"AWS_ACCESS_KEY_ID="+AccessKeyID, "AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
	)
}
