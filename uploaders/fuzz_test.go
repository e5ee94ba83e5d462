package uploaders

import (
	"context"
	"strings"
	"testing"
)

// Any destination URL, for any provider, gives a store or a one-line
// refusal, never a panic; a store's prefix is a clean key prefix, and
// neither its name nor the refusal shows a credential.
func FuzzNew(f *testing.F) {
	const key = "c2VjcmV0LWZ1enota2V5LXRoYXQtbXVzdC1ub3Qtc2hvdw=="
	f.Setenv("AWS_ACCESS_KEY_ID", "AKIAFUZZACCESSKEY")
	f.Setenv("AWS_SECRET_ACCESS_KEY", "fuzz-secret-access-key")
	f.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f.Setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="+key+
		";BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;")
	f.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1")
	for _, u := range []string{"s3://bucket/path/to", "s3://bucket", "s3:///x", "file:///tmp/x", "file://host/x", "file:rel",
		"https://acct.blob.core.windows.net/container/path", "http://127.0.0.1:10000/devstoreaccount1/c/p/", "gs://bucket/p/",
		"https://console.cloud.google.com/storage/browser/bucket/p", "%zz", "s3://b/a b/%2F"} {
		for p := range uint8(4) {
			f.Add(u, p)
		}
	}
	providers := []string{"", "aws-s3", "azure-blob-storage", "google-cloud-storage"}
	f.Fuzz(func(t *testing.T, raw string, p uint8) {
		provider := providers[int(p)%len(providers)]
		s, err := New(context.Background(), raw, Options{Provider: provider})
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") && !strings.Contains(raw, "\n") {
				t.Fatalf("%s %q: two-line error %q", provider, raw, msg)
			}
			if strings.Contains(msg, key) || strings.Contains(msg, "fuzz-secret-access-key") {
				t.Fatalf("a credential in the error %q", msg)
			}
			return
		}
		if g, ok := s.(*GCS); ok {
			defer g.client.Close() // a client per input would pile up
		}
		// Barman takes the path as written (on S3 less its leading
		// slashes), never decoded.
		_, isS3 := s.(*S3)
		if prefix := s.Prefix(); isS3 && strings.HasPrefix(prefix, "/") || !strings.Contains(raw, prefix) {
			t.Errorf("%s %q: prefix %q is not the URL's path as Barman reads it", provider, raw, prefix)
		}
		if name := s.String(); strings.Contains(name, key) || strings.Contains(name, "fuzz-secret-access-key") {
			t.Errorf("a credential in the store's name %q", name)
		}
	})
}
