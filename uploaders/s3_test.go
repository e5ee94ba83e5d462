package uploaders

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// An endpoint URL that already names the bucket would put every key under
// an extra folder with path-style requests: refused, with the URL to use.
func TestCheckEndpointBucket(t *testing.T) {
	for _, c := range []struct {
		url, bucket string
		lookup      minio.BucketLookupType
		want        string // "" when accepted
	}{
		{"https://s3.example.com", "backups", minio.BucketLookupAuto, ""},
		{"https://backups.s3.example.com", "backups", minio.BucketLookupAuto, "use --endpoint-url https://s3.example.com,"},
		{"http://backups.minio.lan:9000", "backups", minio.BucketLookupPath, "use --endpoint-url http://minio.lan:9000,"},
		{"https://backups.s3.example.com", "backups", minio.BucketLookupDNS, ""},
		// minio-go goes path-style for a host it does not know as AWS's.
		{"https://backups.s3.eu-west-1.amazonaws.com", "backups", minio.BucketLookupAuto, "use --endpoint-url https://s3.eu-west-1.amazonaws.com,"},
		{"https://backupsx.s3.example.com", "backups", minio.BucketLookupAuto, ""},
		{"", "backups", minio.BucketLookupAuto, ""},
	} {
		err := checkEndpointBucket(c.url, c.bucket, c.lookup)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkEndpointBucket(%q, %q, %v) = %v, want %q", c.url, c.bucket, c.lookup, err, c.want)
		}
	}
}

// boto3 users set the addressing style and payload signing in their
// profile's nested s3 block; neither has an environment variable.
func TestLoadS3Settings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config")
	os.WriteFile(file, []byte("[default]\nregion = eu-west-3\ns3 =\n    addressing_style = path\n\n"+
		"[profile vh]\ns3 =\n  addressing_style = virtual\n  payload_signing_enabled = true\n\n[profile bad]\ns3 =\n  addressing_style = dns\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", file)
	t.Setenv("AWS_PROFILE", "")
	for profile, want := range map[string]s3Settings{
		"":        {addressingStyle: "path"},
		"vh":      {addressingStyle: "virtual", payloadSigning: true},
		"missing": {},
	} {
		got, err := loadS3Settings(profile)
		if err != nil || got != want {
			t.Errorf("profile %q: %+v, %v; want %+v", profile, got, err, want)
		}
	}
	if _, err := loadS3Settings("bad"); err == nil || !strings.Contains(err.Error(), `addressing_style "dns"`) {
		t.Errorf("a bad addressing style: %v", err)
	}
}

// Every body carries its Content-MD5 (the one given, when the caller
// computed it); its SHA-256 signs it when the
// payload is to be signed (over http, or when the profile asks).
func TestDigests(t *testing.T) {
	body := []byte("a part of a tar archive")
	sum := md5.Sum(body)
	for _, sign := range []bool{false, true} {
		s := &S3{signPayload: sign}
		m, h := s.digests(body, nil)
		if m != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("Content-MD5 %q", m)
		}
		// A digest the engine computed while filling the part is sent
		// as given, not computed again.
		given := md5.Sum([]byte("another body"))
		if m, _ := s.digests(body, given[:]); m != base64.StdEncoding.EncodeToString(given[:]) {
			t.Errorf("Content-MD5 %q, want the one given", m)
		}
		want := ""
		if sign {
			sha := sha256.Sum256(body)
			want = hex.EncodeToString(sha[:])
		}
		if h != want {
			t.Errorf("sign=%v: SHA-256 %q", sign, h)
		}
	}
}

// A custom endpoint without a region is signed for us-east-1, as boto3
// does, so no GetBucketLocation (a bucket-wide right) is needed; AWS's
// regional endpoints name theirs.
func TestEndpointRegion(t *testing.T) {
	for endpoint, want := range map[string]string{
		"127.0.0.1:9000":             "us-east-1",
		"s3.fr-par.scw.cloud":        "us-east-1",
		"s3.eu-west-3.amazonaws.com": "eu-west-3",
		"s3.amazonaws.com":           "",
		"storage.googleapis.com":     "us-east-1",
	} {
		if got := endpointRegion(endpoint); got != want {
			t.Errorf("endpointRegion(%q) = %q, want %q", endpoint, got, want)
		}
	}
}

func TestParseS3(t *testing.T) {
	for _, c := range []struct {
		url  string
		opts Options
		want s3Config
	}{
		{"s3://bkt/a/b", Options{},
			s3Config{bucket: "bkt", prefix: "a/b", endpoint: "s3.amazonaws.com", secure: true}},
		{"s3://bkt", Options{EndpointURL: "http://127.0.0.1:9000", Profile: "p"},
			s3Config{bucket: "bkt", endpointURL: "http://127.0.0.1:9000", endpoint: "127.0.0.1:9000", profile: "p"}},
		{"s3://bkt//x/%41", Options{EndpointURL: "https://minio.example:9000/"},
			s3Config{bucket: "bkt", prefix: "x/%41", endpointURL: "https://minio.example:9000/", endpoint: "minio.example:9000", secure: true}},
	} {
		got, err := parseS3(c.url, c.opts)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if got.bucket != c.want.bucket || got.prefix != c.want.prefix || got.endpoint != c.want.endpoint ||
			got.endpointURL != c.want.endpointURL || got.secure != c.want.secure || got.profile != c.want.profile {
			t.Errorf("%s %+v:\n got %+v\nwant %+v", c.url, c.opts, *got, c.want)
		}
	}
	got, err := parseS3("s3://b/p", Options{Tags: [][2]string{{"team", "dba"}}, Encryption: "aws:kms", SSEKMSKeyID: "k1"})
	if err != nil || got.put.UserTags["team"] != "dba" || got.put.ServerSideEncryption == nil ||
		got.put.ServerSideEncryption.Type() != "KMS" {
		t.Errorf("tags and encryption: %+v, %v", got, err)
	}
	for _, c := range []struct {
		url  string
		opts Options
		want string
	}{
		{"s3:///p", Options{}, "Invalid s3 URL address: s3:///p"},
		{"gs://b/p", Options{}, "Invalid s3 URL address"},
		{"s3://b/p", Options{EndpointURL: "127.0.0.1:9000"}, "invalid endpoint URL"},
		{"s3://b/p", Options{Encryption: "AES128"}, `invalid encryption "AES128"`},
		{"s3://b/p", Options{Tags: [][2]string{{"a", "b\x01"}}}, "invalid --tags for S3"},
	} {
		if _, err := parseS3(c.url, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: %v, want %q", c.url, c.opts, err, c.want)
		}
	}
}

// S3's answers in the Store contract's terms.
func TestS3Classify(t *testing.T) {
	s := &S3{bucket: "bkt"}
	answer := func(status int, code string) error {
		return minio.ErrorResponse{StatusCode: status, Code: code, BucketName: "bkt"}
	}
	var missing *BucketMissingError
	if err := s.classify(answer(404, "NoSuchBucket")); !errors.As(err, &missing) || missing.Bucket != "bkt" {
		t.Errorf("NoSuchBucket: %v", err)
	}
	for _, status := range []int{412, 409} {
		if err := s.classify(answer(status, "PreconditionFailed")); !errors.Is(err, ErrExists) || Transient(err) {
			t.Errorf("%d: %v", status, err)
		}
	}
	for _, a := range []error{answer(503, "SlowDown"), answer(500, "InternalError"), answer(400, "RequestTimeout")} {
		if err := s.classify(a); !Transient(err) {
			t.Errorf("%v is not transient", a)
		}
	}
	if err := s.classify(answer(403, "AccessDenied")); Transient(err) || errors.Is(err, ErrUnreachable) {
		t.Errorf("AccessDenied: %v", err)
	}
	if err := s.classify(&url.Error{Op: "Put", URL: "http://127.0.0.1:1", Err: syscall.ECONNREFUSED}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("connection refused: %v", err)
	}
}

// An interrupt stops a listing at once, whatever --read-timeout says:
// the S3 calls that take no context of minio-go's would wait for a store
// that never answers until the timeout ran out.
func TestS3ListingHonoursContext(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hold }))
	defer srv.Close()
	defer close(hold)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	store, err := New(context.Background(), "s3://backups/pg", Options{EndpointURL: srv.URL, ReadTimeout: 3600})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for name, call := range map[string]func(ctx context.Context) error{
		"Test":    store.Test,
		"ListDir": func(ctx context.Context) error { _, err := store.(*S3).ListDir(ctx, "pg/", "/"); return err },
	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want context.Canceled", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still waits for the store after the interrupt", name)
		}
	}
}
