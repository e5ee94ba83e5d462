package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// smallStore is a file store whose limits force many small parts, and
// which records every part it is sent.
type smallStore struct {
	*uploaders.FileStore
	limits uploaders.Limits
	mu     sync.Mutex
	parts  map[string][]int // part sizes by key, by part number
	// failPart fails that part number of every object; failComplete
	// fails every completion. Both are permanent refusals.
	failPart     int
	failComplete bool
	aborted      []string
}

func (s *smallStore) Limits() uploaders.Limits { return s.limits }

func (s *smallStore) NewMultipart(ctx context.Context, key string) (uploaders.Multipart, error) {
	mp, err := s.FileStore.NewMultipart(ctx, key)
	return &recordedMultipart{Multipart: mp, store: s, key: key}, err
}

type recordedMultipart struct {
	uploaders.Multipart
	store *smallStore
	key   string
}

func (m *recordedMultipart) Upload(ctx context.Context, p uploaders.Part) error {
	if p.Number == m.store.failPart {
		return fmt.Errorf("upload %s part %d: AccessDenied", m.key, p.Number)
	}
	m.store.mu.Lock()
	sizes := m.store.parts[m.key]
	for len(sizes) < p.Number {
		sizes = append(sizes, 0)
	}
	sizes[p.Number-1] = len(p.Data)
	m.store.parts[m.key] = sizes
	m.store.mu.Unlock()
	return m.Multipart.Upload(ctx, p)
}

func (m *recordedMultipart) Complete(ctx context.Context) error {
	if m.store.failComplete {
		return fmt.Errorf("complete %s: InvalidPart", m.key)
	}
	return m.Multipart.Complete(ctx)
}

func (m *recordedMultipart) Abort(ctx context.Context) error {
	m.store.mu.Lock()
	m.store.aborted = append(m.store.aborted, m.key)
	m.store.mu.Unlock()
	return m.Multipart.Abort(ctx)
}

func newSmallStore(t *testing.T, minPart int64, maxParts int) (*smallStore, string) {
	root := t.TempDir()
	fs, err := uploaders.NewFileStore(root)
	if err != nil {
		t.Fatal(err)
	}
	return &smallStore{FileStore: fs, parts: map[string][]int{},
		limits: uploaders.Limits{MinPartSize: minPart, MaxParts: maxParts, MaxObjectSize: 1 << 40}}, root
}

// smallFiles lays out PGDATA with files of at most 48 KiB.
func smallFiles(t *testing.T, big int) *dirSource {
	dir := t.TempDir()
	d := &dirSource{pgdata: filepath.Join(dir, "data"), tbs: filepath.Join(dir, "tbs")}
	write(t, filepath.Join(d.pgdata, "PG_VERSION"), 3, 1)
	write(t, filepath.Join(d.pgdata, "global", "pg_control"), 8192, 2)
	for i := range 40 {
		write(t, filepath.Join(d.pgdata, "base", "5", fmt.Sprint(16000+i)), 48<<10, int64(10+i))
	}
	if big > 0 {
		write(t, filepath.Join(d.pgdata, "base", "5", "99999"), big, 3)
	}
	write(t, filepath.Join(d.tbs, "PG_15_202209061", "5", "16500"), 40<<10, 6)
	return d
}

// Every object in many parts: all parts but the last the same size,
// numbered from 1 without a gap, and the bytes whole (the archives read
// back, every file in them).
func TestMultipartPartsAreEqual(t *testing.T) {
	for _, codec := range []string{"", "gz"} {
		t.Run("codec="+codec, func(t *testing.T) {
			store, root := newSmallStore(t, 4096, 40)
			c, _ := tarball.CodecByName(codec, 0)
			// -S 400KiB: parts of 2 × 400KiB / 40 = 20 KiB.
			_, err := Run(context.Background(), smallFiles(t, 0), Options{Store: store, ServerName: "main",
				BackupID: "20261124T120000", Codec: c, MaxArchiveSize: 400 << 10, Jobs: 3, BlockSize: 16 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(store.parts) < 2 {
				t.Fatalf("objects uploaded in parts: %v", store.parts)
			}
			for key, sizes := range store.parts {
				for i, n := range sizes[:len(sizes)-1] {
					if n != 20<<10 {
						t.Errorf("%s part %d: %d bytes, want %d like every part but the last", key, i+1, n, 20<<10)
					}
				}
				if last := sizes[len(sizes)-1]; last <= 0 || last > 20<<10 {
					t.Errorf("%s last part %d bytes", key, last)
				}
			}
			keys, _ := store.List(context.Background(), "")
			sort.Strings(keys)
			members := readArchive(t, root, keys, "data", c.Ext())
			for i := range 40 {
				if members[fmt.Sprintf("base/5/%d", 16000+i)] != 48<<10 {
					t.Errorf("base/5/%d missing or cut", 16000+i)
				}
			}
		})
	}
}

// An object can hold at most its part count times the part size: a file
// larger than that fails the backup with a way out (--min-chunk-size),
// which then works.
func TestObjectCapacity(t *testing.T) {
	store, _ := newSmallStore(t, 4096, 40)
	c, _ := tarball.CodecByName("", 0)
	opts := Options{Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: c,
		MaxArchiveSize: 400 << 10, Jobs: 2, BlockSize: 16 << 10}
	// Parts of 20 KiB hold 800 KiB: a 1 MiB file cannot go in.
	_, err := Run(context.Background(), smallFiles(t, 1<<20), opts)
	if err == nil || !strings.Contains(err.Error(), "base/5/99999 (1048576 bytes) is larger than one object can hold (40 parts of 20480 bytes): raise --min-chunk-size") {
		t.Fatalf("a file larger than an object: %v", err)
	}
	opts.BackupID, opts.MinChunkSize = "20261124T130000", 32<<10
	if _, err := Run(context.Background(), smallFiles(t, 1<<20), opts); err != nil {
		t.Fatalf("with --min-chunk-size 32KiB: %v", err)
	}
	for key, sizes := range store.parts {
		if strings.Contains(key, "20261124T130000") && len(sizes) > 1 && sizes[0] != 32<<10 {
			t.Errorf("%s: parts of %d bytes, want --min-chunk-size's %d", key, sizes[0], 32<<10)
		}
	}
}

// --max-bandwidth's bucket holds one part, so tokens gather while one
// worker sends, and starts empty, so no run goes above the rate at first.
func TestBandwidthBucket(t *testing.T) {
	if newBandwidth(0, 8<<20) != nil {
		t.Error("no limit made a limiter")
	}
	b := newBandwidth(50<<20, 8<<20)
	if b.limiter.Burst() != 8<<20 || b.limiter.Tokens() > 1<<20 {
		t.Errorf("burst %d, tokens at start %.0f: want one part, and empty", b.limiter.Burst(), b.limiter.Tokens())
	}
	if err := b.take(context.Background(), 0); err != nil {
		t.Error(err)
	}
}

// A part refused for good, or a completion, fails the run: every upload
// left open is aborted (no temporary file stays in the file store),
// backup.info says FAILED with the store's words, and backup mode ends.
func TestMultipartFailureAbortsEverything(t *testing.T) {
	for _, c := range []struct {
		name         string
		failPart     int
		failComplete bool
		words        string
	}{
		{"part 3 refused", 3, false, "part 3: AccessDenied"},
		{"completion refused", 0, true, "InvalidPart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, root := newSmallStore(t, 4096, 40)
			store.failPart, store.failComplete = c.failPart, c.failComplete
			src := smallFiles(t, 0)
			codec, _ := tarball.CodecByName("", 0)
			_, err := Run(context.Background(), src, Options{Store: store, ServerName: "main",
				BackupID: "20261124T120000", Codec: codec, MaxArchiveSize: 400 << 10, Jobs: 2, BlockSize: 16 << 10})
			var fe *FailedError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("run: %v, want a failure saying %q", err, c.words)
			}
			if len(store.aborted) == 0 {
				t.Error("no multipart upload was aborted")
			}
			if !src.aborted {
				t.Error("backup mode was not ended")
			}
			info, _ := os.ReadFile(filepath.Join(root, "main/base/20261124T120000/backup.info"))
			if !strings.Contains(string(info), "status=FAILED\n") || !strings.Contains(string(info), c.words) {
				t.Errorf("backup.info:\n%s", info)
			}
			filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.Contains(fi.Name(), ".tmp-") {
					t.Errorf("left open: %s", p)
				}
				return nil
			})
		})
	}
}
