package uploaders

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// S3 stores objects in an S3 bucket, on AWS or any S3-compatible service.
type S3 struct {
	core   *minio.Core
	bucket string
	prefix string
	region string
	opts   Options
	put    minio.PutObjectOptions
}

// NewS3 builds an S3 store. Credentials and region are found as boto3
// finds them for Barman: see awsCredentials.
func NewS3(ctx context.Context, bucket, prefix string, opts Options) (*S3, error) {
	endpoint, secure := "s3.amazonaws.com", true
	if opts.EndpointURL != "" {
		u, err := url.Parse(opts.EndpointURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("invalid endpoint URL %q: it must be http(s)://HOST[:PORT]", opts.EndpointURL)
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	creds, region, err := awsCredentials(ctx, opts.Profile)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(opts.ReadTimeout) * time.Second
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := newTransport(timeout, opts.Jobs)
	if bundle := os.Getenv("AWS_CA_BUNDLE"); bundle != "" {
		// boto3's way to trust a private CA, so Barman's setting works
		// here too; certificates are verified either way.
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: no PEM certificate in %s", bundle)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	core, err := minio.NewCore(endpoint, &minio.Options{
		Creds:     creds,
		Secure:    secure,
		Region:    region,
		Transport: tr,
		// One attempt per call: WithRetry decides what is tried again,
		// the same way for every provider.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", endpoint, err)
	}
	s := &S3{core: core, bucket: bucket, prefix: prefix, region: region, opts: opts}
	if len(opts.Tags) > 0 {
		m := make(map[string]string, len(opts.Tags))
		for _, kv := range opts.Tags {
			m[kv[0]] = kv[1]
		}
		// minio-go drops every tag, silently, if one breaks S3's rules for
		// tags; check first so a bad tag is an error, not a surprise.
		if _, err := tags.NewTags(m, true); err != nil {
			return nil, fmt.Errorf("invalid --tags for S3 (%v): keys and values may hold letters, digits, spaces and + - = . _ : / @", err)
		}
		s.put.UserTags = m
	}
	switch opts.Encryption {
	case "":
	case "AES256":
		s.put.ServerSideEncryption = encrypt.NewSSE()
	case "aws:kms":
		s.put.ServerSideEncryption, _ = encrypt.NewSSEKMS("", nil)
	default:
		return nil, fmt.Errorf("invalid encryption %q: use AES256 or aws:kms", opts.Encryption)
	}
	return s, nil
}

func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Prefix is the path inside the bucket.
func (s *S3) Prefix() string { return s.prefix }

// Limits are S3's multipart rules as Barman uses them.
func (s *S3) Limits() Limits {
	return Limits{MinPartSize: 5 << 20, MaxParts: 10000, MaxObjectSize: 1 << 40}
}

// classify marks transport failures, where no HTTP answer came back, as
// unreachable, and answers that ask to try again (5xx, SlowDown, which is
// a 503, and RequestTimeout, a 400) as transient.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchBucket" {
		return &BucketMissingError{Bucket: resp.BucketName, Err: err}
	}
	if transientStatus(resp.StatusCode) || resp.Code == "RequestTimeout" {
		return markTransient(err)
	}
	return err
}

// Test lists at most one key under the prefix: the endpoint answers and
// the bucket exists, with no bucket-wide request (HeadBucket needs
// s3:ListBucket on the whole bucket).
func (s *S3) Test(ctx context.Context) error {
	_, err := s.core.ListObjectsV2(s.bucket, s.prefix, "", "", "/", 1)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, classify(err))
	}
	return nil
}

// Put stores data under key in one request, with the tags and encryption.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	_, err := s.core.Client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), s.put)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, classify(err))
	}
	return nil
}

// Create stores data only if the key is free (If-None-Match: *).
func (s *S3) Create(ctx context.Context, key string, data []byte) error {
	opts := s.put
	opts.SetMatchETagExcept("*")
	_, err := s.core.Client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if code := minio.ToErrorResponse(err).StatusCode; code == http.StatusPreconditionFailed || code == http.StatusConflict {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, classify(err))
	}
	return nil
}

// Delete removes an object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.core.Client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", key, classify(err))
	}
	return nil
}

// List returns the keys under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for obj := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, classify(obj.Err))
		}
		keys = append(keys, obj.Key)
	}
	return keys, nil
}

// NewMultipart starts a multipart upload.
func (s *S3) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, s.put)
	if err != nil {
		return nil, fmt.Errorf("start multipart upload %s: %w", key, classify(err))
	}
	return &s3Multipart{s: s, key: key, id: id}, nil
}

type s3Multipart struct {
	s     *S3
	key   string
	id    string
	mu    sync.Mutex
	parts []minio.CompletePart
}

func (m *s3Multipart) Upload(ctx context.Context, number int, offset int64, data []byte) error {
	p, err := m.s.core.PutObjectPart(ctx, m.s.bucket, m.key, m.id, number,
		bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("upload %s part %d: %w", m.key, number, classify(err))
	}
	m.mu.Lock()
	m.parts = append(m.parts, minio.CompletePart{PartNumber: number, ETag: p.ETag})
	m.mu.Unlock()
	return nil
}

func (m *s3Multipart) Complete(ctx context.Context) error {
	m.mu.Lock()
	parts := append([]minio.CompletePart(nil), m.parts...)
	m.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	if _, err := m.s.core.CompleteMultipartUpload(ctx, m.s.bucket, m.key, m.id, parts, m.s.put); err != nil {
		return fmt.Errorf("complete %s: %w", m.key, classify(err))
	}
	return nil
}

func (m *s3Multipart) Abort(ctx context.Context) error {
	if err := m.s.core.AbortMultipartUpload(ctx, m.s.bucket, m.key, m.id); err != nil {
		return fmt.Errorf("abort %s: %w", m.key, classify(err))
	}
	return nil
}
