package uploaders

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

func TestParseGCS(t *testing.T) {
	for url, want := range map[string]gcsConfig{
		"gs://bucket/a/b/": {bucket: "bucket", prefix: "a/b"},
		"gs://bucket":      {bucket: "bucket"},
		"https://console.cloud.google.com/storage/browser/bkt/x": {bucket: "bkt", prefix: "x"},
	} {
		got, err := parseGCS(url, Options{})
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		if got.bucket != want.bucket || got.prefix != want.prefix {
			t.Errorf("%s: bucket %q prefix %q, want %+v", url, got.bucket, got.prefix, want)
		}
	}
	got, _ := parseGCS("gs://b/p", Options{Tags: [][2]string{{"k", "v"}}, KMSKeyName: "projects/p/keys/k"})
	if got.tags["k"] != "v" || got.kmsKey != "projects/p/keys/k" {
		t.Errorf("options not kept: %+v", got)
	}
	for _, url := range []string{"gs:///x", "s3://b/p"} {
		if _, err := parseGCS(url, Options{}); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// The answers of the JSON API, as its client returns them, in the
// Store contract's terms.
func TestGCSClassify(t *testing.T) {
	g := &GCS{name: "bkt"}
	var missing *BucketMissingError
	if err := g.classify(storage.ErrBucketNotExist); !errors.As(err, &missing) || missing.Bucket != "bkt" {
		t.Errorf("missing bucket: %v", err)
	}
	if err := g.classify(&googleapi.Error{Code: http.StatusPreconditionFailed}); !errors.Is(err, ErrExists) || Transient(err) {
		t.Errorf("412: %v", err)
	}
	for _, code := range []int{429, 500, 503} {
		if err := g.classify(&googleapi.Error{Code: code}); !Transient(err) {
			t.Errorf("%d is not transient: %v", code, err)
		}
	}
	if err := g.classify(&googleapi.Error{Code: http.StatusForbidden}); Transient(err) || errors.Is(err, ErrExists) {
		t.Errorf("403: %v", err)
	}
}
