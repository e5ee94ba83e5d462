//go:build integration

package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Create is what keeps two runs from taking the same backup ID: on every
// real store, the second create of a key must fail with ErrExists.
func TestCreateIsAtomic(t *testing.T) {
	ctx := context.Background()
	m := StartMinIO(t, "locks")
	a := StartAzurite(t, "locks")
	StartFakeGCS(t, "locks") // sets STORAGE_EMULATOR_HOST for the GCS store
	for _, e := range m.Env() {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", a.ConnStr)
	for name, c := range map[string]struct {
		url  string
		opts uploaders.Options
	}{
		"s3":    {"s3://locks/p", uploaders.Options{EndpointURL: m.Endpoint}},
		"azure": {a.Endpoint + "/locks/p", uploaders.Options{Provider: "azure-blob-storage"}},
		"gcs":   {"gs://locks/p", uploaders.Options{Provider: "google-cloud-storage"}},
		"file":  {"file://" + t.TempDir(), uploaders.Options{}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := uploaders.New(ctx, c.url, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Test(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Create(ctx, "p/x.lock", []byte("first")); err != nil {
				t.Fatalf("first create: %v", err)
			}
			if err := s.Create(ctx, "p/x.lock", []byte("second")); !errors.Is(err, uploaders.ErrExists) {
				t.Fatalf("second create: %v, want ErrExists", err)
			}
			if err := s.Delete(ctx, "p/x.lock"); err != nil {
				t.Fatal(err)
			}
			if err := s.Create(ctx, "p/x.lock", []byte("again")); err != nil {
				t.Fatalf("create after delete: %v", err)
			}
			if err := s.Delete(ctx, "p/missing"); err != nil {
				t.Errorf("deleting a missing object: %v", err)
			}
		})
	}
}
