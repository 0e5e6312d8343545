package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	s3Bucket = "targets-bucket"
	// s3Secret must never appear in an error.
	s3Secret = "s3-test-secret-key"
)

// s3Request is what fakeS3 saw of one request.
type s3Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
}

// fakeS3 is gofakes3 with an in-memory backend, served over HTTP on
// loopback, recording the requests it receives.
type fakeS3 struct {
	backend *s3mem.Backend
	server  *httptest.Server

	mu       sync.Mutex
	requests []s3Request
	// unavailable is how many of the next requests get 503.
	unavailable int
	// asAWS answers a PUT with If-Match on a missing key 404 NoSuchKey,
	// as AWS and SeaweedFS do, where gofakes3 answers 412.
	asAWS bool
}

func newFakeS3() *fakeS3 {
	f := &fakeS3{backend: s3mem.New()}
	Expect(f.backend.CreateBucket(s3Bucket)).To(Succeed())
	faker := gofakes3.New(f.backend)
	handler := faker.Server()
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, s3Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone()})
		fail := f.unavailable > 0
		if fail {
			f.unavailable--
		}
		asAWS := f.asAWS
		f.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if asAWS && r.Method == http.MethodPut && r.Header.Get("If-Match") != "" && !f.exists(r) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	DeferCleanup(f.server.Close)
	return f
}

// exists reports whether the object a request names is in the bucket.
func (f *fakeS3) exists(r *http.Request) bool {
	key := strings.TrimPrefix(r.URL.Path, "/"+s3Bucket+"/")
	_, err := f.backend.HeadObject(s3Bucket, key)
	return err == nil
}

// newS3Fixture is an S3Store over a fresh fakeS3, as a contract fixture.
func newS3Fixture(asAWS bool) (storetest.Fixture, *fakeS3) {
	fake := newFakeS3()
	fake.mu.Lock()
	fake.asAWS = asAWS
	fake.mu.Unlock()
	st := newS3Store(s3Options(fake.server.URL))
	return storetest.Fixture{Store: st, PutRaw: fake.putRaw, RawKeys: fake.rawKeys}, fake
}

func (f *fakeS3) seen() []s3Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]s3Request(nil), f.requests...)
}

func (f *fakeS3) listRequests() int {
	n := 0
	for _, r := range f.seen() {
		if r.Method == http.MethodGet && strings.Contains(r.Query, "list-type=2") {
			n++
		}
	}
	return n
}

func (f *fakeS3) putRaw(key string, body []byte) {
	_, err := f.backend.PutObject(s3Bucket, key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

func (f *fakeS3) rawKeys() []string {
	list, err := f.backend.ListBucket(s3Bucket, nil, gofakes3.ListBucketPage{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	keys := []string{}
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// s3Options points a store at endpoint with static test credentials.
func s3Options(endpoint string) store.S3Options {
	return store.S3Options{
		Bucket:   s3Bucket,
		Region:   "eu-west-2",
		Endpoint: endpoint,
		AWSConfig: &aws.Config{
			Credentials: credentials.NewStaticCredentialsProvider("AKIATESTKEY", s3Secret, ""),
		},
	}
}

func newS3Store(o store.S3Options) *store.S3Store {
	s, err := store.NewS3(context.Background(), o)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return s
}

var _ = Describe("S3Store", func() {
	var (
		fake *fakeS3
		st   *store.S3Store
		ctx  context.Context
		key  string
	)

	useFakeS3 := func() {
		var fx storetest.Fixture
		fx, fake = newS3Fixture(false)
		st = fx.Store.(*store.S3Store)
		ctx = context.Background()
		key = storetest.Key(store.ActivePrefix, 1)
	}

	Context("against gofakes3", func() {
		BeforeEach(useFakeS3)

		lastPut := func() s3Request {
			var put s3Request
			for _, r := range fake.seen() {
				if r.Method == http.MethodPut {
					put = r
				}
			}
			ExpectWithOffset(1, put.Method).To(Equal(http.MethodPut), "no PUT was made")
			return put
		}

		It("addresses the bucket path-style and sends JSON with its MD5 and no streaming checksum", func() {
			body := []byte(`[]`)
			_, err := st.Put(ctx, key, body, store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			put := lastPut()
			Expect(put.Path).To(Equal("/" + s3Bucket + "/" + key))
			Expect(put.Header.Get("Content-Type")).To(Equal("application/json"))
			sum := md5.Sum(body)
			Expect(put.Header.Get("Content-Md5")).To(Equal(base64.StdEncoding.EncodeToString(sum[:])))
			Expect(put.Header.Get("Content-Encoding")).NotTo(ContainSubstring("aws-chunked"))
			for name := range put.Header {
				Expect(strings.ToLower(name)).NotTo(HavePrefix("x-amz-checksum-"))
			}
			Expect(put.Header.Get("If-Match")).To(BeEmpty())
			Expect(put.Header.Get("If-None-Match")).To(BeEmpty())
		})

		It("sends If-None-Match: * for IfNoneMatch", func() {
			_, err := st.Put(ctx, key, []byte("[]"), store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(lastPut().Header.Get("If-None-Match")).To(Equal("*"))
		})

		It("sends the quoted ETag as If-Match for IfMatch", func() {
			etag, err := st.Put(ctx, key, []byte("[]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			_, err = st.Put(ctx, key, []byte("[1]"), store.Condition{IfMatch: etag})
			Expect(err).NotTo(HaveOccurred())
			Expect(lastPut().Header.Get("If-Match")).To(Equal(`"` + etag + `"`))
		})

		It("makes no request for an invalid key or prefix", func() {
			before := len(fake.seen())
			_, _, err := st.Get(ctx, "active/../x.json")
			Expect(err).To(MatchError(store.ErrInvalidKey))
			_, err = st.Put(ctx, "bindings/not-a-guid.json", nil, store.Condition{})
			Expect(err).To(MatchError(store.ErrInvalidKey))
			Expect(st.Delete(ctx, "")).To(MatchError(store.ErrInvalidKey))
			_, err = st.List(ctx, "")
			Expect(err).To(MatchError(store.ErrInvalidKey))
			Expect(fake.seen()).To(HaveLen(before))
		})

		It("reads every page of a listing, leaving out stray keys", func() {
			st = newS3Store(func() store.S3Options {
				o := s3Options(fake.server.URL)
				o.PageSize = 3
				return o
			}())
			var want []string
			for n := range 10 {
				k := storetest.Key(store.ActivePrefix, n)
				want = append(want, k)
				_, err := st.Put(ctx, k, []byte(fmt.Sprint(n)), store.Condition{})
				Expect(err).NotTo(HaveOccurred())
			}
			fake.putRaw("active/stray.txt", []byte("x"))
			fake.putRaw("active/"+storetest.GUID(4)+".json.old", []byte("x"))
			fake.putRaw("inactive/"+storetest.GUID(99)+".json", []byte("x"))

			objects, err := st.List(ctx, store.ActivePrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objectKeys(objects)).To(Equal(want))
			Expect(fake.listRequests()).To(Equal(5)) // 12 keys, 3 a page
		})

		It("pages through more than 1000 objects at the default page size", func() {
			for n := range 1001 {
				fake.putRaw(storetest.Key(store.InactivePrefix, n), []byte("[]"))
			}
			objects, err := st.List(ctx, store.InactivePrefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(objects).To(HaveLen(1001))
			Expect(objects[0].Key).To(Equal(storetest.Key(store.InactivePrefix, 0)))
			Expect(objects[1000].Key).To(Equal(storetest.Key(store.InactivePrefix, 1000)))
			Expect(objects[1000].ETag).To(Equal(md5Hex([]byte("[]"))))
			Expect(fake.listRequests()).To(Equal(2))
		})

		It("retries a request S3 could not serve, body and all", func() {
			o := s3Options(fake.server.URL)
			o.MaxAttempts = 2
			st = newS3Store(o)
			fake.mu.Lock()
			fake.unavailable = 1
			fake.mu.Unlock()
			body := []byte(`[{"targets":["x"]}]`)
			_, err := st.Put(ctx, key, body, store.Condition{IfNoneMatch: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(fake.seen()).To(HaveLen(2))
			Expect(fake.rawKeys()).To(Equal([]string{key}))
			got, _, err := st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(body))
		})

		It("does not mistake a missing bucket for a missing object, or for a failed condition", func() {
			o := s3Options(fake.server.URL)
			o.Bucket = "no-such-bucket"
			_, _, err := newS3Store(o).Get(ctx, key)
			Expect(err).To(HaveOccurred())
			Expect(err).NotTo(MatchError(store.ErrNotFound))
			_, err = newS3Store(o).Put(ctx, key, []byte("[]"), store.Condition{IfMatch: md5Hex([]byte("x"))})
			Expect(err).To(MatchError(ContainSubstring("NoSuchBucket")))
			Expect(err).NotTo(MatchError(store.ErrPreconditionFailed))
		})
	})

	Context("when S3 fails", func() {
		var (
			handler http.HandlerFunc
			calls   int
			mu      sync.Mutex
		)

		BeforeEach(func() {
			ctx = context.Background()
			key = storetest.Key(store.BindingPrefix, 1)
			calls = 0
		})

		// start serves handler and builds a store for it that tries once.
		start := func() {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls++
				mu.Unlock()
				handler(w, r)
			}))
			DeferCleanup(server.Close)
			o := s3Options(server.URL)
			o.MaxAttempts = 1
			o.Timeout = 200 * time.Millisecond
			st = newS3Store(o)
		}

		// expectEveryMethodFails checks that each method returns an error
		// naming the operation and the key, and that matches.
		expectEveryMethodFails := func(matches func(error)) {
			_, _, err := st.Get(ctx, key)
			Expect(err).To(MatchError(ContainSubstring("s3 get " + key)))
			matches(err)
			_, err = st.Put(ctx, key, []byte("[]"), store.Condition{IfNoneMatch: true})
			Expect(err).To(MatchError(ContainSubstring("s3 put " + key)))
			matches(err)
			err = st.Delete(ctx, key)
			Expect(err).To(MatchError(ContainSubstring("s3 delete " + key)))
			matches(err)
			_, err = st.List(ctx, store.BindingPrefix)
			Expect(err).To(MatchError(ContainSubstring("s3 list " + store.BindingPrefix)))
			matches(err)
			// Each method reached the server, and tried once.
			Eventually(func() int {
				mu.Lock()
				defer mu.Unlock()
				return calls
			}).Should(Equal(4))
		}

		notAStoreOutcome := func(err error) {
			ExpectWithOffset(1, err).NotTo(MatchError(store.ErrNotFound))
			ExpectWithOffset(1, err).NotTo(MatchError(store.ErrPreconditionFailed))
			ExpectWithOffset(1, err.Error()).NotTo(ContainSubstring(s3Secret))
		}

		Context("with 500 Internal Error", func() {
			BeforeEach(func() {
				handler = func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(http.StatusInternalServerError)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
				}
				start()
			})

			It("returns errors with the operation and key", func() {
				expectEveryMethodFails(func(err error) {
					notAStoreOutcome(err)
					Expect(err).To(MatchError(ContainSubstring("InternalError")))
				})
			})
		})

		Context("by dropping the connection", func() {
			BeforeEach(func() {
				handler = func(w http.ResponseWriter, _ *http.Request) {
					conn, _, err := http.NewResponseController(w).Hijack()
					Expect(err).NotTo(HaveOccurred())
					Expect(conn.Close()).To(Succeed())
				}
				start()
			})

			It("returns errors with the operation and key", func() {
				expectEveryMethodFails(notAStoreOutcome)
			})
		})

		Context("by never answering", func() {
			BeforeEach(func() {
				release := make(chan struct{})
				handler = func(_ http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}
				start()
				// Registered after the server's Close, so it runs first.
				DeferCleanup(func() { close(release) })
			})

			// The spec's context only bounds the test should the per-call
			// timeout not work: it ends with Canceled, not DeadlineExceeded.
			It("gives up after the per-call timeout", func(sctx SpecContext) {
				ctx = sctx
				expectEveryMethodFails(func(err error) {
					notAStoreOutcome(err)
					Expect(err).To(MatchError(context.DeadlineExceeded))
				})
			}, SpecTimeout(time.Minute))
		})

		Context("with 409 ConditionalRequestConflict", func() {
			BeforeEach(func() {
				handler = func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(http.StatusConflict)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is in progress.</Message></Error>`)
				}
				start()
			})

			It("Put reports ErrPreconditionFailed", func() {
				_, err := st.Put(ctx, key, []byte("[]"), store.Condition{IfNoneMatch: true})
				Expect(err).To(MatchError(store.ErrPreconditionFailed))
				Expect(err).To(MatchError(ContainSubstring("s3 put " + key)))
			})
		})
	})

	Describe("OpenStore", func() {
		BeforeEach(useFakeS3)

		// signedWith lists the bucket through OpenStore and returns the
		// access key id and session token the request was signed with.
		signedWith := func(c config.Store) (string, string) {
			GinkgoT().Setenv("AWS_CONFIG_FILE", "/nonexistent")
			GinkgoT().Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
			GinkgoT().Setenv("AWS_EC2_METADATA_DISABLED", "true")
			c.Bucket, c.Region, c.Endpoint = s3Bucket, "eu-west-2", fake.server.URL
			s, err := store.Open(ctx, c, prometheus.NewRegistry())
			Expect(err).NotTo(HaveOccurred())
			_, err = s.List(ctx, store.ActivePrefix)
			Expect(err).NotTo(HaveOccurred())
			fake.mu.Lock()
			defer fake.mu.Unlock()
			last := fake.requests[len(fake.requests)-1]
			auth := last.Header.Get("Authorization")
			_, rest, ok := strings.Cut(auth, "Credential=")
			Expect(ok).To(BeTrue(), auth)
			id, _, _ := strings.Cut(rest, "/")
			return id, last.Header.Get("X-Amz-Security-Token")
		}

		It("signs with the credentials in its configuration (from VCAP_SERVICES)", func() {
			GinkgoT().Setenv("AWS_ACCESS_KEY_ID", "")
			GinkgoT().Setenv("AWS_SECRET_ACCESS_KEY", "")
			id, token := signedWith(config.Store{AccessKeyID: "AKIAFROMCONFIG", SecretAccessKey: s3Secret, SessionToken: "session-token"})
			Expect(id).To(Equal("AKIAFROMCONFIG"))
			Expect(token).To(Equal("session-token"))
		})

		It("signs with the AWS SDK's usual sources when its configuration has none", func() {
			GinkgoT().Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
			GinkgoT().Setenv("AWS_SECRET_ACCESS_KEY", s3Secret)
			id, token := signedWith(config.Store{})
			Expect(id).To(Equal("AKIAFROMENV"))
			Expect(token).To(BeEmpty())
		})
	})

	Describe("NewS3Store", func() {
		It("requires a bucket", func() {
			o := s3Options("http://127.0.0.1:1")
			o.Bucket = ""
			_, err := store.NewS3(context.Background(), o)
			Expect(err).To(MatchError(ContainSubstring("bucket")))
		})

		It("requires a region for AWS S3", func() {
			o := s3Options("")
			o.Region = ""
			_, err := store.NewS3(context.Background(), o)
			Expect(err).To(MatchError(ContainSubstring("region")))
		})
	})
})
