package uploaders

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"github.com/rs/zerolog"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	htransport "google.golang.org/api/transport/http"
)

// gcsConsoleURL is the browser URL form Barman also accepts for buckets.
const gcsConsoleURL = "https://console.cloud.google.com/storage/browser/"

// composeLimit is the most source objects one compose request takes.
const composeLimit = 32

// GCS stores objects in a Google Cloud Storage bucket. Barman uploads an
// object in one stream there; to use -J workers, its parts are uploaded
// in parallel as temporary objects and composed into the final one.
type GCS struct {
	client *storage.Client
	bucket *storage.BucketHandle
	name   string
	prefix string
	tags   map[string]string
	// kmsKey is --kms-key-name: the Cloud KMS key of every object written.
	kmsKey string
	tr     *http.Transport
	// timeout is --read-timeout.
	timeout time.Duration
}

// gcsConfig is a GCS destination as its URL and options give it.
type gcsConfig struct {
	bucket, prefix string
	tags           map[string]string
	kmsKey         string
	timeout        time.Duration
	jobs           int
}

// parseGCS reads gs://BUCKET/PREFIX, or the console's browser URL, which
// Barman also accepts.
func parseGCS(rawURL string, opts Options) (*gcsConfig, error) {
	if !strings.HasPrefix(rawURL, "gs://") && !strings.HasPrefix(rawURL, gcsConsoleURL) {
		return nil, fmt.Errorf("Google cloud storage URL %s is malformed: use gs://BUCKET/PATH", rawURL)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(rawURL, gcsConsoleURL), "gs://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, fmt.Errorf("Google cloud storage URL %s is malformed: bucket name not found", rawURL)
	}
	return &gcsConfig{bucket: bucket, prefix: strings.Trim(prefix, "/"), tags: tagMap(opts.Tags), kmsKey: opts.KMSKeyName,
		timeout: readTimeout(opts), jobs: opts.Jobs}, nil
}

// open builds the client. Credentials are Application Default
// Credentials (GOOGLE_APPLICATION_CREDENTIALS first);
// STORAGE_EMULATOR_HOST points the client at an emulator without them.
//
// The client's own transport would ignore --read-timeout: it is ours
// (newTransport, withReadTimeout) under the same authentication the
// client would set up itself, with the options storage.NewClient gives
// it. No deadline of the SDK's cuts in below ours: every call is one
// attempt (RetryNever), so the retry deadlines are not used, and writes
// are single requests (see writeObject).
func (c *gcsConfig) open(ctx context.Context) (Store, error) {
	tr := newTransport(c.timeout, c.jobs)
	rt := withReadTimeout(tr, c.timeout)
	if os.Getenv("STORAGE_EMULATOR_HOST") == "" {
		var err error
		rt, err = htransport.NewTransport(ctx, rt,
			option.WithScopes(storage.ScopeFullControl, "https://www.googleapis.com/auth/cloud-platform"),
			internaloption.WithDefaultEndpointTemplate("https://storage.UNIVERSE_DOMAIN/storage/v1/"),
			internaloption.WithDefaultMTLSEndpoint("https://storage.mtls.googleapis.com/storage/v1/"),
			internaloption.WithDefaultUniverseDomain("googleapis.com"),
			internaloption.EnableNewAuthLibrary())
		if err != nil {
			return nil, fmt.Errorf("Google Cloud Storage credentials: %w", err)
		}
	}
	client, err := storage.NewClient(ctx, option.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		return nil, fmt.Errorf("Google Cloud Storage client: %w", err)
	}
	// One attempt per call: WithRetry decides what is tried again.
	bucket := client.Bucket(c.bucket).Retryer(storage.WithPolicy(storage.RetryNever))
	return &GCS{client: client, tr: tr, bucket: bucket, name: c.bucket, prefix: c.prefix, tags: c.tags,
		kmsKey: c.kmsKey, timeout: c.timeout}, nil
}

// Close closes the client and its connections.
func (g *GCS) Close() error {
	err := g.client.Close()
	g.tr.CloseIdleConnections()
	return err
}

func (g *GCS) String() string { return "gs://" + g.name + "/" + g.prefix }

// Prefix is the path inside the bucket.
func (g *GCS) Prefix() string { return g.prefix }

// Limits: parts are objects of their own, composed at the end.
func (g *GCS) Limits() Limits {
	return Limits{MinPartSize: 5 << 20, MaxParts: 10000, MaxObjectSize: 1 << 40}
}

// Test lists at most one object under the prefix, which needs only
// storage.objects.list; as in Barman, any other error from the service
// means it is unusable (exit 2).
func (g *GCS) Test(ctx context.Context) error {
	it := g.bucket.Objects(ctx, &storage.Query{Prefix: g.prefix})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	switch err = g.classify(err); {
	case err == nil, errors.Is(err, iterator.Done):
		return nil
	case errors.Is(err, ErrBucketMissing):
		return fmt.Errorf("check bucket %s: %w", g.name, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// write stores data in one request; metadata carries the tags.
func (g *GCS) write(ctx context.Context, key string, data []byte, metadata map[string]string) error {
	return g.writeObject(ctx, g.bucket.Object(key), key, data, metadata)
}

func (g *GCS) writeObject(ctx context.Context, obj *storage.ObjectHandle, key string, data []byte, metadata map[string]string) error {
	w := obj.NewWriter(ctx)
	w.ChunkSize = 0 // the data is in memory: one request, no resumable session
	// Neither applies to a single request today, but its default (32 s)
	// would cut a chunked upload short below --read-timeout: should
	// chunks come back, the read timeout bounds each of them, as it does
	// every request. ChunkTransferTimeout stays 0 (none): the transport's
	// own bounds already stop a stalled chunk.
	w.ChunkRetryDeadline = g.timeout
	w.Metadata = metadata
	w.KMSKeyName = g.kmsKey
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("upload %s: %w", key, g.classify(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("upload %s: %w", key, g.classify(err))
	}
	return nil
}

// classify keeps the Store contract for GCS (see Store): a missing
// bucket, a failed DoesNotExist precondition (412) and the answers that
// ask to try again are marked so; ErrUnreachable is Test's to decide, as
// in Barman.
func (g *GCS) classify(err error) error {
	var apiErr *googleapi.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrBucketNotExist),
		errors.As(err, &apiErr) && apiErr.Code == http.StatusNotFound && strings.Contains(apiErr.Message, "bucket"):
		return &BucketMissingError{Bucket: g.name, Err: err}
	case errors.As(err, &apiErr) && apiErr.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrExists, err)
	case errors.As(err, &apiErr) && transientStatus(apiErr.Code):
		return markTransient(err)
	}
	return err
}

// Put stores data with the tags as object metadata, as Barman does.
func (g *GCS) Put(ctx context.Context, key string, data []byte) error {
	return g.write(ctx, key, data, g.tags)
}

// Create stores data only if the object does not exist (a DoesNotExist
// precondition).
func (g *GCS) Create(ctx context.Context, key string, data []byte) error {
	obj := g.bucket.Object(key).If(storage.Conditions{DoesNotExist: true})
	err := g.writeObject(ctx, obj, key, data, g.tags)
	if errors.Is(err, ErrExists) {
		return ErrExists
	}
	return err
}

// Get reads a small object whole.
func (g *GCS) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := g.bucket.Object(key).NewReader(ctx)
	if err == nil {
		defer r.Close()
		var b []byte
		if b, err = io.ReadAll(r); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("read %s: %w", key, g.classify(err))
}

// Delete removes an object.
func (g *GCS) Delete(ctx context.Context, key string) error {
	if err := g.bucket.Object(key).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("delete %s: %w", key, g.classify(err))
	}
	return nil
}

// List returns the object names under prefix.
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := g.bucket.Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, g.classify(err))
		}
		keys = append(keys, o.Name)
	}
}

// NewMultipart uploads parts as temporary objects under PREFIX/.bcb-parts/,
// outside every server's folder, so Barman's tools never see them.
func (g *GCS) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	var id [8]byte
	rand.Read(id[:])
	tmp := strings.TrimPrefix(g.prefix+"/.bcb-parts/"+hex.EncodeToString(id[:]), "/")
	return &gcsMultipart{g: g, key: key, tmp: tmp}, nil
}

type gcsMultipart struct {
	g     *GCS
	key   string
	tmp   string
	mu    sync.Mutex
	parts []int
	temps []string
	size  int64
}

func (m *gcsMultipart) Upload(ctx context.Context, p Part) error {
	name := fmt.Sprintf("%s/%05d", m.tmp, p.Number)
	m.mu.Lock()
	m.temps = append(m.temps, name)
	m.mu.Unlock()
	if err := m.g.write(ctx, name, p.Data, nil); err != nil {
		return fmt.Errorf("upload %s part %d: %w", m.key, p.Number, err)
	}
	m.mu.Lock()
	m.parts = append(m.parts, p.Number)
	m.size += int64(len(p.Data))
	m.mu.Unlock()
	return nil
}

// Completed checks the object is there with the size of the parts. A
// retried compose succeeds anyway (its sources are deleted only after),
// so this is rarely needed.
func (m *gcsMultipart) Completed(ctx context.Context) (bool, error) {
	attrs, err := m.g.bucket.Object(m.key).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("attributes of %s: %w", m.key, m.g.classify(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return attrs.Size == m.size, nil
}

// Complete composes the parts into the object, 32 at a time in as many
// levels as needed, then deletes the temporary objects.
func (m *gcsMultipart) Complete(ctx context.Context) error {
	m.mu.Lock()
	sort.Ints(m.parts)
	srcs := make([]*storage.ObjectHandle, len(m.parts))
	for i, n := range m.parts {
		srcs[i] = m.g.bucket.Object(fmt.Sprintf("%s/%05d", m.tmp, n))
	}
	m.mu.Unlock()
	for level := 0; len(srcs) > composeLimit; level++ {
		var next []*storage.ObjectHandle
		for i := 0; i < len(srcs); i += composeLimit {
			name := fmt.Sprintf("%s/l%d-%05d", m.tmp, level, i/composeLimit)
			m.mu.Lock()
			m.temps = append(m.temps, name)
			m.mu.Unlock()
			dst := m.g.bucket.Object(name)
			if _, err := dst.ComposerFrom(srcs[i:min(i+composeLimit, len(srcs))]...).Run(ctx); err != nil {
				return fmt.Errorf("compose %s: %w", m.key, m.g.classify(err))
			}
			next = append(next, dst)
		}
		srcs = next
	}
	dst := m.g.bucket.Object(m.key)
	c := dst.ComposerFrom(srcs...)
	c.Metadata = m.g.tags
	if _, err := c.Run(ctx); err != nil {
		return fmt.Errorf("compose %s: %w", m.key, m.g.classify(err))
	}
	if m.g.kmsKey != "" {
		// The client sends no KMS key with a compose (it is not part of
		// the destination it serializes), so the composed object takes the
		// key by being rewritten onto itself: a server-side copy.
		cp := dst.CopierFrom(dst)
		cp.DestinationKMSKeyName = m.g.kmsKey
		if _, err := cp.Run(ctx); err != nil {
			return fmt.Errorf("rewrite %s with its KMS key: %w", m.key, m.g.classify(err))
		}
	}
	if err := m.deleteTemps(ctx); err != nil {
		zerolog.Ctx(ctx).Warn().Msgf("cleaning up the parts of %s: %v", m.key, err)
	}
	return nil
}

func (m *gcsMultipart) deleteTemps(ctx context.Context) error {
	m.mu.Lock()
	temps := append([]string(nil), m.temps...)
	m.mu.Unlock()
	var errs []error
	for _, name := range temps {
		if err := m.g.bucket.Object(name).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Abort deletes the parts uploaded so far.
func (m *gcsMultipart) Abort(ctx context.Context) error {
	if err := m.deleteTemps(ctx); err != nil {
		return fmt.Errorf("abort %s: %w", m.key, err)
	}
	return nil
}
