package uploaders

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// Every body carries its Content-MD5; its SHA-256 signs it when the
// payload is to be signed (over http, or when the profile asks).
func TestDigests(t *testing.T) {
	body := []byte("a part of a tar archive")
	sum := md5.Sum(body)
	for _, sign := range []bool{false, true} {
		s := &S3{signPayload: sign}
		m, h := s.digests(body)
		if m != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("Content-MD5 %q", m)
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
