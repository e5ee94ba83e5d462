package actors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// misaddressed writes every key under an extra folder, as a client whose
// endpoint URL already names the bucket does, while listings see the
// destination as configured: the shape of a backup no catalogue finds.
type misaddressed struct{ *uploaders.FileStore }

func (m misaddressed) Put(ctx context.Context, key string, data []byte) error {
	return m.FileStore.Put(ctx, "bucket/"+key, data)
}

func (m misaddressed) Create(ctx context.Context, key string, data []byte) error {
	return m.FileStore.Create(ctx, "bucket/"+key, data)
}

func (m misaddressed) Delete(ctx context.Context, key string) error {
	return m.FileStore.Delete(ctx, "bucket/"+key)
}

func (m misaddressed) NewMultipart(ctx context.Context, key string) (uploaders.Multipart, error) {
	return m.FileStore.NewMultipart(ctx, "bucket/"+key)
}

// shortening loses the last byte of every object stored in one request,
// as a proxy that cuts bodies would, without an error.
type shortening struct{ *uploaders.FileStore }

func (s shortening) Put(ctx context.Context, key string, data []byte) error {
	return s.FileStore.Put(ctx, key, data[:max(0, len(data)-1)])
}

func TestRunReadsTheCatalogBack(t *testing.T) {
	codec, _ := tarball.CodecByName("gz", 0)
	for _, c := range []struct {
		name  string
		store func(*uploaders.FileStore) uploaders.Store
		want  string
	}{
		{"extra-folder", func(f *uploaders.FileStore) uploaders.Store { return misaddressed{f} },
			"Barman's catalogue lists 0 backup folders under main/base/"},
		{"short-object", func(f *uploaders.FileStore) uploaders.Store { return shortening{f} },
			"were written"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			fs, _ := uploaders.NewFileStore(root)
			_, err := Run(context.Background(), fixture(t), Options{
				Store: c.store(fs), ServerName: "main", BackupID: "20261124T120000", Codec: codec,
				MaxArchiveSize: 100 << 30, Jobs: 2,
			})
			var fe *FailedError
			if !errors.As(err, &fe) || !errors.Is(err, ErrNotInCatalog) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run: %v, want a failure saying %q", err, c.want)
			}
		})
	}
	t.Run("sound", func(t *testing.T) {
		root, _, err := run(t, fixture(t), "gz", 100<<30)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "main/base/20261124T120000/backup.info")); err != nil {
			t.Fatal(err)
		}
	})
}
