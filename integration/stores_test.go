//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
	"github.com/pgbackup/barman-cloud-backup/uploaders/storetest"
)

// Every real store keeps the Store contract (uploaders.Store): the suite
// go test runs on the file store, here on MinIO, Azurite and
// fake-gcs-server, each through uploaders.New as the commands open it.
func TestStoreContract(t *testing.T) {
	m := StartMinIO(t, "contract")
	a := StartAzurite(t, "contract")
	StartFakeGCS(t, "contract") // sets STORAGE_EMULATOR_HOST for the GCS store
	for _, e := range m.Env() {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", a.ConnStr)
	var n atomic.Int64
	for _, c := range []struct {
		name string
		url  func(bucket string) string
		opts uploaders.Options
	}{
		{"s3", func(b string) string { return "s3://" + b }, uploaders.Options{EndpointURL: m.Endpoint}},
		{"azure", func(b string) string { return a.Endpoint + "/" + b }, uploaders.Options{Provider: "azure-blob-storage"}},
		{"gcs", func(b string) string { return "gs://" + b }, uploaders.Options{Provider: "google-cloud-storage"}},
	} {
		open := func(t *testing.T, bucket, prefix string) uploaders.Store {
			s, err := uploaders.New(context.Background(), c.url(bucket)+"/"+prefix, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		t.Run(c.name, storetest.Suite{
			Open: func(t *testing.T) uploaders.Store {
				return open(t, "contract", fmt.Sprintf("run%d/pg", n.Add(1)))
			},
			OpenMissing: func(t *testing.T) uploaders.Store { return open(t, "no-such-bucket", "pg") },
		}.Run)
	}
}
