package uploaders

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/tags"
	"github.com/rs/zerolog"
)

// S3 stores objects in an S3 bucket, on AWS or any S3-compatible service.
type S3 struct {
	core *minio.Core
	tr   *http.Transport
	// bucket is the bucket's name, or an access point's host label.
	bucket      string
	accessPoint *accessPoint
	prefix      string
	put         minio.PutObjectOptions
	// signPayload sends each body's SHA-256 in the signature; otherwise
	// the payload goes as UNSIGNED-PAYLOAD. Content-MD5 is sent either way.
	signPayload bool

	mu sync.Mutex
	// unsure are the keys whose CreateMultipartUpload failed in a way
	// that may have hidden a success: an upload may be open there that
	// nobody knows the ID of.
	unsure map[string]bool
}

// s3Config is an S3 destination as its URL and options give it, checked
// without a request or a file read.
type s3Config struct {
	bucket, prefix string
	// endpointURL is --endpoint-url as given; endpoint is its HOST[:PORT]
	// (AWS's global endpoint when none is given).
	endpointURL, endpoint string
	secure                bool
	profile               string
	// style is --addressing-style; "" follows the profile.
	style   string
	timeout time.Duration
	jobs    int
	// accessPoint is set when the URL names one by its ARN: bucket is
	// then its host label and endpoint the host under it.
	accessPoint *accessPoint
	// put carries the tags and the server-side encryption of every object.
	put minio.PutObjectOptions
}

// parseS3 reads s3://BUCKET/PREFIX, or s3://ACCESS-POINT-ARN/PREFIX, and
// the S3 options.
func parseS3(rawURL string, opts Options) (*s3Config, error) {
	c := &s3Config{endpoint: "s3.amazonaws.com", secure: true, endpointURL: opts.EndpointURL,
		profile: opts.Profile, style: opts.AddressingStyle, timeout: readTimeout(opts), jobs: opts.Jobs}
	if isAccessPointURL(rawURL) {
		ap, prefix, err := parseAccessPoint(rawURL)
		if err != nil {
			return nil, err
		}
		if c.style == "path" {
			return nil, fmt.Errorf("--addressing-style path cannot reach access point %s: its requests go to its own host", ap)
		}
		if c.endpoint, c.secure, err = ap.endpoint(opts.EndpointURL); err != nil {
			return nil, err
		}
		c.bucket, c.prefix, c.accessPoint = ap.hostLabel(), prefix, ap
	} else {
		u, err := url.Parse(rawURL)
		if err != nil || u.Scheme != "s3" || u.Host == "" {
			return nil, fmt.Errorf("Invalid s3 URL address: %s", rawURL)
		}
		c.bucket, c.prefix = u.Host, strings.TrimLeft(urlPath(rawURL), "/")
		if opts.EndpointURL != "" {
			if c.endpoint, c.secure, err = parseEndpointURL(opts.EndpointURL); err != nil {
				return nil, err
			}
		}
	}
	if m := tagMap(opts.Tags); m != nil {
		// minio-go drops every tag, silently, if one breaks S3's rules for
		// tags; check first so a bad tag is an error, not a surprise.
		if _, err := tags.NewTags(m, true); err != nil {
			return nil, fmt.Errorf("invalid --tags for S3 (%v): keys and values may hold letters, digits, spaces and + - = . _ : / @", err)
		}
		c.put.UserTags = m
	}
	switch opts.Encryption {
	case "":
	case "AES256":
		c.put.ServerSideEncryption = encrypt.NewSSE()
	case "aws:kms":
		sse, err := encrypt.NewSSEKMS(opts.SSEKMSKeyID, nil)
		if err != nil {
			return nil, fmt.Errorf("--sse-kms-key-id: %w", err)
		}
		c.put.ServerSideEncryption = sse
	default:
		return nil, fmt.Errorf("invalid encryption %q: use AES256 or aws:kms", opts.Encryption)
	}
	return c, nil
}

// open builds the client. Credentials and region are found as boto3
// finds them for Barman (see awsCredentials), and the profile's s3
// settings as botocore reads them.
func (c *s3Config) open(ctx context.Context) (Store, error) {
	creds, region, err := awsCredentials(ctx, c.profile)
	if err != nil {
		return nil, err
	}
	tr := newTransport(c.timeout, c.jobs)
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
	if region == "" {
		region = endpointRegion(c.endpoint)
	}
	settings, err := loadS3Settings(c.profile)
	if err != nil {
		return nil, err
	}
	// botocore's order: the client's own setting (the command line),
	// then the profile's.
	style := settings.addressingStyle
	if c.style != "" {
		style = c.style
	}
	lookup := map[string]minio.BucketLookupType{"path": minio.BucketLookupPath, "virtual": minio.BucketLookupDNS}[style]
	if c.accessPoint != nil {
		// An access point is its own host, and its ARN names the region
		// requests are signed for, whatever the profile says.
		lookup, region = minio.BucketLookupDNS, c.accessPoint.region
	}
	if err := checkEndpointBucket(c.endpointURL, c.bucket, lookup); err != nil {
		return nil, err
	}
	if lookup == minio.BucketLookupDNS && isIPHost(c.endpoint) {
		return nil, fmt.Errorf("virtual-host addressing cannot reach bucket %s at IP address %s: use a host name in --endpoint-url, or --addressing-style path", c.bucket, c.endpoint)
	}
	core, err := minio.NewCore(c.endpoint, &minio.Options{
		Creds:        creds,
		Secure:       c.secure,
		Region:       region,
		BucketLookup: lookup,
		Transport:    withReadTimeout(tr, c.timeout),
		// One attempt per call: WithRetry decides what is tried again,
		// the same way for every provider.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", c.endpoint, err)
	}
	if c.accessPoint != nil {
		// minio-go sends the requests of any endpoint it takes for AWS's
		// regional S3 (s3-accesspoint.REGION.amazonaws.com is one to it)
		// to s3[.dualstack].REGION.amazonaws.com instead; its transfer
		// acceleration host is the one it keeps for bucket requests, so
		// the access point's domain goes there. A no-op elsewhere
		// (Outposts, --endpoint-url), where minio-go keeps the host.
		core.SetS3TransferAccelerate(c.endpoint)
	}
	// As botocore does for Barman: a payload sent in clear is signed with
	// its SHA-256; over https it goes unsigned unless the profile asks.
	return &S3{core: core, tr: tr, bucket: c.bucket, accessPoint: c.accessPoint, prefix: c.prefix, put: c.put,
		signPayload: !c.secure || settings.payloadSigning}, nil
}

// Close drops the client's idle connections.
func (s *S3) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

func (s *S3) String() string { return "s3://" + s.bucketName() + "/" + s.prefix }

// bucketName is the bucket as the user named it: its name, or the access
// point's ARN.
func (s *S3) bucketName() string {
	if s.accessPoint != nil {
		return s.accessPoint.String()
	}
	return s.bucket
}

// Prefix is the path inside the bucket.
func (s *S3) Prefix() string { return s.prefix }

// Limits are S3's multipart rules as Barman uses them.
func (s *S3) Limits() Limits {
	return Limits{MinPartSize: 5 << 20, MaxParts: 10000, MaxObjectSize: 1 << 40, PartMD5: true}
}

// classify keeps the Store contract for S3 (see Store): no HTTP answer is
// unreachable; NoSuchBucket is a missing bucket; a failed If-None-Match
// (412, or 409 when a concurrent conditional write won) means the key
// exists; answers that ask to try again (5xx, SlowDown, which is a 503,
// and RequestTimeout, a 400) are transient.
func (s *S3) classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchBucket":
		return &BucketMissingError{Bucket: s.bucketName(), Err: err}
	case resp.StatusCode == http.StatusPreconditionFailed || resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrExists, err)
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
	_, _, err := s.listV2(ctx, s.prefix, "/", 1)
	if err != nil {
		return fmt.Errorf("check bucket %s (ListObjectsV2 under %q): %w", s.bucketName(), s.prefix, s.classify(err))
	}
	return nil
}

// digests are a body's integrity headers: Content-MD5 always, which every
// S3 store checks and AWS requires on buckets with Object Lock, and the
// SHA-256 that signs the payload when it is to be signed. The body goes
// with a plain Content-Length: no aws-chunked encoding, no checksum
// trailer, which several stores and gateways refuse.
func (s *S3) digests(data, md5Sum []byte) (md5Base64, sha256Hex string) {
	if len(md5Sum) != md5.Size {
		sum := md5.Sum(data)
		md5Sum = sum[:]
	}
	md5Base64 = base64.StdEncoding.EncodeToString(md5Sum)
	if s.signPayload {
		h := sha256.Sum256(data)
		sha256Hex = hex.EncodeToString(h[:])
	}
	return md5Base64, sha256Hex
}

// putObject stores data in one PutObject request with opts.
func (s *S3) putObject(ctx context.Context, key string, data []byte, opts minio.PutObjectOptions) error {
	md5Base64, sha256Hex := s.digests(data, nil)
	opts.DisableContentSha256 = true // no streaming signature
	_, err := s.core.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), md5Base64, sha256Hex, opts)
	return err
}

// Put stores data under key in one request, with the tags and encryption.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if err := s.putObject(ctx, key, data, s.put); err != nil {
		return fmt.Errorf("upload %s (PutObject): %w", key, s.classify(err))
	}
	return nil
}

// Create stores data only if the key is free (If-None-Match: *).
func (s *S3) Create(ctx context.Context, key string, data []byte) error {
	opts := s.put
	opts.SetMatchETagExcept("*")
	err := s.classify(s.putObject(ctx, key, data, opts))
	if errors.Is(err, ErrExists) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create %s (PutObject If-None-Match): %w", key, err)
	}
	return nil
}

// Get reads a small object whole.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.core.Client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		var b []byte
		if b, err = io.ReadAll(obj); err == nil {
			obj.Close()
			return b, nil
		}
		obj.Close()
	}
	return nil, fmt.Errorf("read %s (GetObject): %w", key, s.classify(err))
}

// Delete removes an object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.core.Client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s (DeleteObject): %w", key, s.classify(err))
	}
	return nil
}

// List returns the keys under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for obj := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s (ListObjectsV2): %w", prefix, s.classify(obj.Err))
		}
		keys = append(keys, obj.Key)
	}
	return keys, nil
}

// NewMultipart starts a multipart upload. CreateMultipartUpload is not
// idempotent: when an attempt fails with no answer (the store may have
// created an upload and lost the reply), the next success aborts every
// other upload of the key, so none is left open. No other run writes the
// key: the backup ID is locked. This one listing needs
// s3:ListBucketMultipartUploads, and only after such a failure.
func (s *S3) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, s.put)
	if err != nil {
		err = s.classify(err)
		if Transient(err) {
			s.mu.Lock()
			if s.unsure == nil {
				s.unsure = map[string]bool{}
			}
			s.unsure[key] = true
			s.mu.Unlock()
		}
		return nil, fmt.Errorf("start multipart upload %s (CreateMultipartUpload): %w", key, err)
	}
	s.mu.Lock()
	unsure := s.unsure[key]
	delete(s.unsure, key)
	s.mu.Unlock()
	if unsure {
		s.abortOthers(ctx, key, id)
	}
	return &s3Multipart{s: s, key: key, id: id}, nil
}

// abortOthers aborts the multipart uploads of key but keep. Failing to is
// a warning: the backup itself is sound.
func (s *S3) abortOthers(ctx context.Context, key, keep string) {
	log := zerolog.Ctx(ctx)
	res, err := s.core.ListMultipartUploads(ctx, s.bucket, key, "", "", "", 1000)
	if err != nil {
		log.Warn().Msgf("an upload of %s may be left open (ListMultipartUploads: %v)", key, s.classify(err))
		return
	}
	for _, u := range res.Uploads {
		if u.Key != key || u.UploadID == keep {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, key, u.UploadID); err != nil {
			log.Warn().Msgf("an upload of %s is left open (AbortMultipartUpload %s: %v)", key, u.UploadID, s.classify(err))
			continue
		}
		log.Info().Msgf("Aborted an upload of %s whose start was answered too late", key)
	}
}

type s3Multipart struct {
	s     *S3
	key   string
	id    string
	mu    sync.Mutex
	parts []minio.CompletePart
	size  int64
}

func (m *s3Multipart) Upload(ctx context.Context, part Part) error {
	md5Base64, sha256Hex := m.s.digests(part.Data, part.MD5)
	p, err := m.s.core.PutObjectPart(ctx, m.s.bucket, m.key, m.id, part.Number,
		bytes.NewReader(part.Data), int64(len(part.Data)), minio.PutObjectPartOptions{
			Md5Base64: md5Base64, Sha256Hex: sha256Hex, DisableContentSha256: true})
	if err != nil {
		return fmt.Errorf("upload %s part %d (UploadPart): %w", m.key, part.Number, m.s.classify(err))
	}
	m.mu.Lock()
	m.parts = append(m.parts, minio.CompletePart{PartNumber: part.Number, ETag: p.ETag})
	m.size += int64(len(part.Data))
	m.mu.Unlock()
	return nil
}

// Completed checks the object is there with the size of the parts.
func (m *s3Multipart) Completed(ctx context.Context) (bool, error) {
	st, err := m.s.core.StatObject(ctx, m.s.bucket, m.key, minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s (HeadObject): %w", m.key, m.s.classify(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return st.Size == m.size, nil
}

func (m *s3Multipart) Complete(ctx context.Context) error {
	m.mu.Lock()
	parts := append([]minio.CompletePart(nil), m.parts...)
	m.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	if _, err := m.s.core.CompleteMultipartUpload(ctx, m.s.bucket, m.key, m.id, parts, m.s.put); err != nil {
		return fmt.Errorf("complete %s (CompleteMultipartUpload): %w", m.key, m.s.classify(err))
	}
	return nil
}

func (m *s3Multipart) Abort(ctx context.Context) error {
	if err := m.s.core.AbortMultipartUpload(ctx, m.s.bucket, m.key, m.id); err != nil {
		return fmt.Errorf("abort %s (AbortMultipartUpload): %w", m.key, m.s.classify(err))
	}
	return nil
}

// endpointRegion is the region to sign for when neither the environment
// nor the profile names one. AWS's regional endpoints name it; for any
// other endpoint it is us-east-1, as boto3 signs for a custom endpoint
// without a region. Only AWS's global endpoint is left to minio-go, which
// then asks the bucket (GetBucketLocation, a bucket-wide right).
func endpointRegion(endpoint string) string {
	u := url.URL{Scheme: "https", Host: endpoint}
	if s3utils.IsAmazonEndpoint(u) {
		return s3utils.GetRegionFromURL(u)
	}
	return "us-east-1"
}

// checkEndpointBucket refuses an endpoint URL whose host already starts
// with the bucket's name when requests go path-style: every key would land
// under an extra folder named after the bucket, where Barman's tools never
// look (path-style is the default for any endpoint but AWS's and Google's).
func checkEndpointBucket(endpointURL, bucket string, lookup minio.BucketLookupType) error {
	u, err := url.Parse(endpointURL)
	if endpointURL == "" || err != nil || lookup == minio.BucketLookupDNS {
		return nil
	}
	first, rest, ok := strings.Cut(u.Hostname(), ".")
	if !ok || first != bucket {
		return nil
	}
	if lookup == minio.BucketLookupAuto && (s3utils.IsAmazonEndpoint(*u) || s3utils.IsGoogleEndpoint(*u)) {
		return nil // virtual-host style there by default
	}
	fixed := *u
	fixed.Host = rest
	if u.Port() != "" {
		fixed.Host = net.JoinHostPort(rest, u.Port())
	}
	return fmt.Errorf("--endpoint-url %s already names bucket %s: use --endpoint-url %s, "+
		"with --addressing-style virtual if the store wants requests sent to BUCKET.HOST", endpointURL, bucket, fixed.String())
}

// parseEndpointURL is --endpoint-url's HOST[:PORT], and whether it is
// https.
func parseEndpointURL(raw string) (host string, secure bool, err error) {
	e, err := url.Parse(raw)
	if err != nil || e.Host == "" || (e.Scheme != "http" && e.Scheme != "https") {
		return "", false, fmt.Errorf("invalid endpoint URL %q: it must be http(s)://HOST[:PORT]", raw)
	}
	return e.Host, e.Scheme == "https", nil
}

// isIPHost tells whether HOST[:PORT] names an IP address, which no bucket
// name can be put in front of.
func isIPHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}
