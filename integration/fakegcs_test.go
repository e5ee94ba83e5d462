//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// FakeGCS is fake-gcs-server, a Google Cloud Storage emulator, on a
// loopback port.
type FakeGCS struct {
	Host   string // 127.0.0.1:PORT, for STORAGE_EMULATOR_HOST
	client *storage.Client
}

func fakeGCSBinary(t testing.TB) string {
	if p := os.Getenv("FAKE_GCS_BIN"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "bcb-tools", "bin", "fake-gcs-server")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no fake-gcs-server: set FAKE_GCS_BIN or run integration/setup.sh (%v)", err)
	}
	return p
}

// StartFakeGCS starts the emulator with in-memory storage and the given
// buckets, and stops it when the test ends.
func StartFakeGCS(t testing.TB, buckets ...string) *FakeGCS {
	t.Helper()
	port := freePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(fakeGCSBinary(t), "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-public-host", host, "-log-level", "error")
	logFile, _ := os.Create(filepath.Join(t.TempDir(), "fake-gcs.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	waitPort(t, port)
	t.Setenv("STORAGE_EMULATOR_HOST", host)
	c, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, b := range buckets {
		if err := c.Bucket(b).Create(context.Background(), "bcb-test", nil); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	return &FakeGCS{Host: host, client: c}
}

// Env points Google clients at the emulator.
func (g *FakeGCS) Env() []string { return []string{"STORAGE_EMULATOR_HOST=" + g.Host} }

// Bucket is one bucket of the emulator, as an objectStore.
func (g *FakeGCS) Bucket(name string) *gcsBucket { return &gcsBucket{b: g.client.Bucket(name)} }

type gcsBucket struct{ b *storage.BucketHandle }

func (g *gcsBucket) Keys(t testing.TB, prefix string) []string {
	t.Helper()
	var keys []string
	it := g.b.Objects(context.Background(), &storage.Query{Prefix: prefix})
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) || errors.Is(err, storage.ErrBucketNotExist) {
			break
		}
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		keys = append(keys, o.Name)
	}
	sort.Strings(keys)
	return keys
}

func (g *gcsBucket) Get(t testing.TB, key string) []byte {
	t.Helper()
	r, err := g.b.Object(key).NewReader(context.Background())
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (g *gcsBucket) Metadata(t testing.TB, key string) map[string]string {
	t.Helper()
	attrs, err := g.b.Object(key).Attrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return attrs.Metadata
}
