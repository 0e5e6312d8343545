// Package seaweedfs runs SeaweedFS (`weed mini`) for tests: a real S3
// implementation, conditional writes included, on loopback, in a throwaway
// directory. `make test` builds the binary once into a cache outside the
// checkout (scripts/test-tools.sh weed); tests never build it.
package seaweedfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/alphagov/cf-app-discovery/store"
)

// Binary returns the weed binary scripts/test-tools.sh built, or an error
// that names the command that builds it.
func Binary() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("seaweedfs: cannot locate scripts/test-tools.sh")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "test-tools.sh")
	out, err := exec.Command(script, "--no-build", "weed").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("seaweedfs: %s", bytes.TrimSpace(exit.Stderr))
		}
		return "", fmt.Errorf("seaweedfs: %w", err)
	}
	return string(bytes.TrimSpace(out)), nil
}

// Options configure Start.
type Options struct {
	// Binary is the weed binary; Binary()'s when empty.
	Binary string
	// AccessKey and SecretKey are the credentials the server accepts.
	// Defaults: "seaweedfs-test" and "seaweedfs-test-secret".
	AccessKey, SecretKey string
	// Bucket is created at start. Default: "test".
	Bucket string
	// Output, when set, receives the server's output as well as its log
	// file.
	Output io.Writer
}

// Server is a running `weed mini`.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
	Bucket    string

	dir string
	// sockets are the gRPC sockets weed places in /tmp by port; a killed
	// weed leaves them behind.
	sockets []string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *bytes.Buffer
	logMu   *sync.Mutex
	// buckets counts the buckets NewBucket made.
	buckets atomic.Int64
}

// startTimeout bounds the wait for the S3 endpoint: the server is ready in
// about 5 s on an idle machine.
const startTimeout = 90 * time.Second

// Start runs `weed mini` with every listener on a free loopback port,
// telemetry off and one volume per bucket, and returns once its S3
// endpoint answers for the bucket with the credentials.
func Start(o Options) (*Server, error) {
	if o.Binary == "" {
		var err error
		if o.Binary, err = Binary(); err != nil {
			return nil, err
		}
	}
	if o.AccessKey == "" {
		o.AccessKey, o.SecretKey = "seaweedfs-test", "seaweedfs-test-secret"
	}
	if o.Bucket == "" {
		o.Bucket = "test"
	}
	// A port taken by another process between our look and weed's listen
	// makes weed exit: try again with other ports.
	var err error
	for range 3 {
		var s *Server
		if s, err = start(o); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// StartIfBuilt starts a server with o when the weed binary is built (o's
// Binary is ignored). When it is not, it returns no server and, in missing,
// why: a suite skips its specs on SeaweedFS with that reason. err is
// Start's error.
func StartIfBuilt(o Options) (s *Server, missing, err error) {
	if o.Binary, missing = Binary(); missing != nil {
		return nil, missing, nil
	}
	s, err = Start(o)
	return s, nil, err
}

func start(o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "seaweedfs-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(10)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{"mini",
		"-dir=" + dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1), "-master.telemetry=false",
		"-master.volumeSizeLimitMB=64", "-volume.max=200",
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-s3.port=" + p(6), "-s3.port.grpc=" + p(7), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-admin.ui=false", "-admin.port=" + p(8), "-admin.port.grpc=" + p(9), "-admin.port.legacy=0",
		"-webdav=false", "-bucket=" + o.Bucket,
	}
	// Unix sockets inside the directory, when its path is short enough for
	// one, rather than in /tmp under a port number.
	if len(dir) < 80 {
		args = append(args, "-filer.localSocket="+filepath.Join(dir, "filer.sock"), "-s3.localSocket="+filepath.Join(dir, "s3.sock"))
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+o.AccessKey, "AWS_SECRET_ACCESS_KEY="+o.SecretKey,
		// One volume per bucket (a collection) instead of seven.
		"WEED_MASTER_VOLUME_GROWTH_COPY_1=1",
	)
	s := &Server{Endpoint: "http://127.0.0.1:" + p(6), AccessKey: o.AccessKey, SecretKey: o.SecretKey,
		Bucket: o.Bucket, dir: dir, cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	for name, port := range map[string]int{"master": 1, "volume": 3, "filer": 5, "s3": 7, "admin": 9} {
		s.sockets = append(s.sockets, fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%s.sock", name, p(port)))
	}
	logFile, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	out := io.MultiWriter(logFile, &lockedWriter{mu: s.logMu, w: s.log})
	if o.Output != nil {
		out = io.MultiWriter(out, o.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = processAttributes()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady lists the bucket until it answers.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := s.client()
	for {
		_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), MaxKeys: aws.Int32(1)})
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("seaweedfs: weed exited at start:\n%s", s.output())
		case <-ctx.Done():
			return fmt.Errorf("seaweedfs: not ready after %s: %w\n%s", startTimeout, err, s.output())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates another bucket, so that a test can start from an
// empty one without restarting the server.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("seaweedfs: creating bucket %s: %w", name, err)
	}
	return nil
}

// NewBucket creates a bucket named prefix-N, N a number no earlier call on
// s used, and returns the project's S3 store on it and its name.
func (s *Server) NewBucket(ctx context.Context, prefix string) (*store.S3Store, string, error) {
	bucket := fmt.Sprintf("%s-%d", prefix, s.buckets.Add(1))
	if err := s.CreateBucket(ctx, bucket); err != nil {
		return nil, "", err
	}
	st, err := s.Store(ctx, bucket)
	if err != nil {
		return nil, "", err
	}
	return st, bucket, nil
}

// PutObject writes an object under any key, bypassing the project's store.
func (s *Server) PutObject(ctx context.Context, bucket, key string, body []byte) error {
	_, err := s.client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

// Keys lists every key of bucket, whatever its shape.
func (s *Server) Keys(ctx context.Context, bucket string) ([]string, error) {
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// Store returns the project's S3 store on bucket.
func (s *Server) Store(ctx context.Context, bucket string) (*store.S3Store, error) {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")}
	return store.NewS3(ctx, store.S3Options{Bucket: bucket, Endpoint: s.Endpoint, AWSConfig: &cfg})
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes its
// directory and sockets.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	for _, socket := range s.sockets {
		_ = os.Remove(socket)
	}
	return os.RemoveAll(s.dir)
}

func (s *Server) output() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	const keep = 4000
	b := s.log.Bytes()
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// freePorts finds n distinct free loopback ports, holding all of them open
// at once so that none is found twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
