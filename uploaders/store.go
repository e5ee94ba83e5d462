// Package uploaders puts backup objects into a destination: one Store per
// provider behind one small interface, so the engine knows no provider.
package uploaders

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrUnreachable marks a failure to reach the provider at all (Barman's
// exit code 2); an answer with an error status is not one.
var ErrUnreachable = errors.New("can't connect to cloud provider")

// ErrBucketMissing marks a bucket (Azure: container; file://: root
// directory) that does not exist. It is never created: Barman 3.16 stopped
// creating buckets, so a typo cannot start a backup into a new, empty
// bucket, and a user needs no bucket-creation right. Barman exits 1.
var ErrBucketMissing = errors.New("bucket does not exist")

// BucketMissingError says which bucket is missing, in Barman 3.16's
// words; errors.Is(err, ErrBucketMissing) holds for it.
type BucketMissingError struct {
	Bucket string
	Err    error
}

func (e *BucketMissingError) Error() string { return fmt.Sprintf("Bucket %s does not exist", e.Bucket) }

// Unwrap gives ErrBucketMissing and the provider's own error.
func (e *BucketMissingError) Unwrap() []error { return []error{ErrBucketMissing, e.Err} }

// ErrExists is returned by Create when the object is already there.
var ErrExists = errors.New("object already exists")

// Limits are a provider's rules for splitting an object into parts.
type Limits struct {
	// MinPartSize is the smallest part allowed but the last.
	MinPartSize int64
	// MaxParts is the most parts one object may have.
	MaxParts int
	// MaxObjectSize caps --max-archive-size.
	MaxObjectSize int64
	// PartMD5 says the store sends each part's MD5 (S3's Content-MD5):
	// the engine then computes it while it fills the part, so the
	// upload's connection does not wait for it (Part.MD5).
	PartMD5 bool
}

// Store is one destination: a bucket (or directory) and a prefix in it.
//
// Every provider keeps one contract, which the suite in uploaders/storetest
// checks (go test runs it on the file store, integration/ on MinIO, Azurite
// and fake-gcs-server):
//   - Put stores or replaces an object; Get returns exactly its bytes.
//   - Create is atomic: of two creates of one key, exactly one succeeds and
//     the other returns ErrExists.
//   - Delete of a missing key succeeds.
//   - List returns every key under a prefix once, and no piece of an
//     unfinished, completed or aborted multipart upload.
//   - A Multipart takes parts in any order and concurrently; Complete
//     stores them in part-number order, after which Completed is true;
//     Abort leaves neither the object nor any part.
//   - Limits are positive, and MaxObjectSize is reachable with MaxParts
//     parts of MinPartSize or more.
//   - Close releases the clients (connections, the GCS client); the store
//     is not used after it.
//
// Each provider turns its SDK's errors into this package's terms in one
// method named classify: errors.Is(err, ErrUnreachable) when no answer
// came, ErrBucketMissing for a missing bucket, ErrExists for a failed
// create-only-if-absent, Transient(err) when the store asks to try again;
// its message is one line without secrets. How a provider parses its URL
// is as uniform: parseS3, parseAzure, parseGCS and parseFile turn the URL
// and Options into a destination with no network call, whose open builds
// the client.
type Store interface {
	// String names the destination for logs, without secrets.
	String() string
	// Prefix is the key prefix every object of the destination starts with.
	Prefix() string
	Limits() Limits
	// Test checks that the provider answers and the bucket exists, reading
	// at most one key under the prefix (so a user allowed only the prefix
	// passes): ErrUnreachable when no answer comes, ErrBucketMissing
	// when the bucket is not there.
	Test(ctx context.Context) error
	// Put stores a small object in one request.
	Put(ctx context.Context, key string, data []byte) error
	// Create stores a small object only if none is there, atomically; it
	// returns ErrExists otherwise.
	Create(ctx context.Context, key string, data []byte) error
	// Get reads a small object whole (the lock, backup.info).
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// NewMultipart starts an object uploaded in parts.
	NewMultipart(ctx context.Context, key string) (Multipart, error)
	// Close releases the store's clients.
	Close() error
}

// Part is one part of a multipart upload.
type Part struct {
	// Number is the part's number, from 1.
	Number int
	// Offset is where the part starts in the object, in bytes.
	Offset int64
	// Data is the part's bytes; a store must not keep it after Upload
	// returns.
	Data []byte
	// MD5 is Data's MD5 digest (16 bytes) when the caller computed it,
	// nil otherwise. A store that sends it uses it rather than hashing
	// Data between two requests: hashing an 8 MiB part takes 10 ms on
	// one core, 5% of the part's time on a 40 MB/s connection, during
	// which the connection would carry nothing.
	MD5 []byte
}

// Multipart is an object being uploaded in parts. Upload may be called
// concurrently; Complete or Abort ends it.
type Multipart interface {
	// Upload stores one part.
	Upload(ctx context.Context, p Part) error
	Complete(ctx context.Context) error
	// Completed reports whether the object is stored as Complete makes
	// it (its size is the parts' total): for a Complete whose answer was
	// lost, and whose retry the store refuses (S3: NoSuchUpload).
	Completed(ctx context.Context) (bool, error)
	Abort(ctx context.Context) error
}

// Options are the provider settings from the command line.
type Options struct {
	Provider    string
	EndpointURL string
	Profile     string
	// ReadTimeout in seconds; 0 means the default of 60.
	ReadTimeout int
	// AddressingStyle is S3's "auto", "virtual" or "path"; "" follows
	// the AWS profile's s3 addressing_style.
	AddressingStyle string
	Encryption      string
	// Tags are KEY,VALUE pairs set on every object, in order.
	Tags [][2]string
	Jobs int
	// Credential is Azure's --credential: azure-cli or managed-identity.
	Credential string
	// EncryptionScope is Azure's --encryption-scope.
	EncryptionScope string
	// SSEKMSKeyID is S3's --sse-kms-key-id, with Encryption aws:kms.
	SSEKMSKeyID string
	// KMSKeyName is GCS's --kms-key-name.
	KMSKeyName string
}

// destination is a destination as parsed from its URL and Options, before
// any network call: open builds its client.
type destination interface {
	open(ctx context.Context) (Store, error)
}

// New returns the store for a destination URL: parsed once, then opened.
func New(ctx context.Context, rawURL string, opts Options) (Store, error) {
	c, err := parse(rawURL, opts, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return c.open(ctx)
}

// parse picks the provider (file:// URLs are always the file store) and
// has it parse the URL; getenv is os.LookupEnv but in tests.
func parse(rawURL string, opts Options, getenv func(string) (string, bool)) (destination, error) {
	// One message for a URL no provider can read (a bad %-escape), whatever
	// the provider: the reason, not a hint at the shape.
	if _, err := url.Parse(rawURL); err != nil && !isAccessPointURL(rawURL) {
		return nil, fmt.Errorf("invalid destination URL %q: %v", rawURL, err)
	}
	if strings.HasPrefix(strings.ToLower(rawURL), "file:") {
		return parseFile(rawURL)
	}
	switch opts.Provider {
	case "", "aws-s3":
		return parseS3(rawURL, opts)
	case "azure-blob-storage":
		return parseAzure(rawURL, opts, getenv)
	case "google-cloud-storage":
		return parseGCS(rawURL, opts)
	}
	return nil, fmt.Errorf("cloud provider %q is not supported yet", opts.Provider)
}

// readTimeout is --read-timeout, 60 seconds when not set, as in Barman.
func readTimeout(opts Options) time.Duration {
	if opts.ReadTimeout <= 0 {
		return 60 * time.Second
	}
	return time.Duration(opts.ReadTimeout) * time.Second
}

// tagMap is --tags as a map, nil when there are none.
func tagMap(tags [][2]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, kv := range tags {
		m[kv[0]] = kv[1]
	}
	return m
}

// urlPath is the path of a URL as Python's urlparse gives it to Barman:
// still percent-encoded, without query, fragment or (for http and https)
// ";params", so that the same URL names the same keys in both tools.
func urlPath(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return ""
	}
	path := rest[i:]
	if s := strings.ToLower(scheme); s == "http" || s == "https" {
		if j := strings.IndexByte(path[strings.LastIndexByte(path, '/'):], ';'); j >= 0 {
			path = path[:strings.LastIndexByte(path, '/')+j]
		}
	}
	return path
}
