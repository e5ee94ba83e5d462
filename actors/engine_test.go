package actors

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// dirSource serves a directory laid out like PGDATA plus a tablespace,
// standing in for the server's side of the backup API.
type dirSource struct {
	pgdata, tbs string
	endErr      error
	// beginDelay and endDelay stand in for the checkpoint and for the
	// wait for the WAL archive.
	beginDelay, endDelay time.Duration
	begun                bool
	aborted              bool
	// checksums is the cluster's data_checksums; checksumsUnknown why it
	// cannot be told.
	checksums        bool
	checksumsUnknown error
}

func (d *dirSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	d.begun = true
	time.Sleep(d.beginDelay)
	info.PGData, info.Status, info.BeginXLOG = d.pgdata, pg.StatusStarted, "FF/0"
	info.Tablespaces = []pg.Tablespace{{Name: "tbs1", OID: 16384, Location: d.tbs}}
	return &pg.Layout{PGData: d.pgdata, MajorVersion: "15", Tablespaces: info.Tablespaces,
		DataChecksums: d.checksums, ChecksumsUnknown: d.checksumsUnknown}, nil
}

func (d *dirSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	if d.endErr != nil {
		return nil, d.endErr
	}
	time.Sleep(d.endDelay)
	return []byte("LABEL: test\n"), nil
}

func (d *dirSource) Abort(ctx context.Context) { d.aborted = true }

func write(t *testing.T, path string, size int, seed int64) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, size)
	r.Read(b) // one call: per-byte calls are slow under the race detector
	for i := range b {
		b[i] = "postgres-page-"[b[i]%14] // compressible, not constant
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T) *dirSource {
	dir := t.TempDir()
	d := &dirSource{pgdata: filepath.Join(dir, "data"), tbs: filepath.Join(dir, "tbs")}
	write(t, filepath.Join(d.pgdata, "PG_VERSION"), 3, 1)
	write(t, filepath.Join(d.pgdata, "global", "pg_control"), 8192, 2)
	write(t, filepath.Join(d.pgdata, "global", "1262"), 8192, 3)
	for i := range 6 {
		write(t, filepath.Join(d.pgdata, "base", "5", fmt.Sprint(16000+i)), 700<<10, int64(10+i))
	}
	write(t, filepath.Join(d.pgdata, "postmaster.pid"), 10, 4)
	write(t, filepath.Join(d.pgdata, "pg_wal", "000000010000000000000001"), 1<<20, 5)
	os.MkdirAll(filepath.Join(d.pgdata, "pg_wal", "archive_status"), 0o700)
	os.MkdirAll(filepath.Join(d.pgdata, "pg_tblspc"), 0o700)
	os.Symlink(d.tbs, filepath.Join(d.pgdata, "pg_tblspc", "16384"))
	write(t, filepath.Join(d.tbs, "PG_15_202209061", "5", "16500"), 300<<10, 6)
	write(t, filepath.Join(d.tbs, "stray-file"), 10, 7)
	return d
}

// readArchive decompresses every part of base in order and returns the
// members with their sizes.
func readArchive(t *testing.T, root string, keys []string, base, ext string) map[string]int64 {
	t.Helper()
	members := map[string]int64{}
	for _, k := range keys {
		name := filepath.Base(k)
		if !strings.HasPrefix(name, base+".") && !strings.HasPrefix(name, base+"_") {
			continue
		}
		if !strings.HasSuffix(name, ".tar"+ext) {
			t.Fatalf("%s: want extension .tar%s", k, ext)
		}
		raw, err := os.ReadFile(filepath.Join(root, k))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(raw)
		switch ext {
		case ".gz":
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			r = zr
		case ".bz2":
			r = bzip2.NewReader(r)
		case ".snappy":
			r = s2.NewReader(r)
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			n, err := io.Copy(io.Discard, tr)
			if err != nil {
				t.Fatalf("%s %s: %v", k, h.Name, err)
			}
			members[h.Name] = n
		}
	}
	return members
}

func run(t *testing.T, src Source, codec string, maxSize int64) (string, *Result, error) {
	t.Helper()
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	c, err := tarball.CodecByName(codec, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), src, Options{
		Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: c,
		MaxArchiveSize: maxSize, Jobs: 2, BlockSize: 64 << 10,
	})
	return root, res, err
}

func TestRunEveryCodec(t *testing.T) {
	for _, codec := range []string{"", "gz", "bz2", "snappy"} {
		t.Run("codec="+codec, func(t *testing.T) {
			src := fixture(t)
			root, res, err := run(t, src, codec, 100<<30)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := tarball.CodecByName(codec, 0)
			want := []string{
				"main/base/20261124T120000/16384.tar" + c.Ext(),
				"main/base/20261124T120000/backup.info",
				"main/base/20261124T120000/data.tar" + c.Ext(),
			}
			store, _ := uploaders.NewFileStore(root)
			keys, _ := store.List(context.Background(), "")
			if strings.Join(keys, " ") != strings.Join(want, " ") {
				t.Fatalf("objects %v, want %v", keys, want)
			}
			data := readArchive(t, root, keys, "data", c.Ext())
			for name, size := range map[string]int64{
				"./PG_VERSION": 3, "global/pg_control": 8192, "base/5/16000": 700 << 10,
				"backup_label": 12, "pg_wal/": 0, "./": 0, "pg_tblspc/": 0,
			} {
				if got, ok := data[name]; !ok || got != size {
					t.Errorf("data member %s: %d bytes (present %v), want %d", name, got, ok, size)
				}
			}
			for _, name := range []string{"./postmaster.pid", "pg_wal/000000010000000000000001", "pg_wal/archive_status/", "pg_tblspc/16384"} {
				if _, ok := data[name]; ok {
					t.Errorf("%s must not be in the data archive", name)
				}
			}
			tbs := readArchive(t, root, keys, "16384", c.Ext())
			if _, ok := tbs["PG_15_202209061/5/16500"]; !ok || len(tbs) != 3 {
				t.Errorf("tablespace members %v", tbs)
			}
			info, _ := os.ReadFile(filepath.Join(root, "main/base/20261124T120000/backup.info"))
			if !bytes.Contains(info, []byte("status=DONE\n")) || !bytes.Contains(info, []byte("'copy_time_per_item': {'16384': ")) {
				t.Errorf("backup.info:\n%s", info)
			}
			if res.Bytes <= 0 || len(res.Objects) != 3 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestRunSplitsParts(t *testing.T) {
	for _, codec := range []string{"", "gz"} {
		t.Run("codec="+codec, func(t *testing.T) {
			root, _, err := run(t, fixture(t), codec, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := tarball.CodecByName(codec, 0)
			store, _ := uploaders.NewFileStore(root)
			keys, _ := store.List(context.Background(), "main/base/20261124T120000/data")
			if len(keys) < 2 || !strings.HasSuffix(keys[1], "/data_0001.tar"+c.Ext()) {
				t.Fatalf("want data split in parts, got %v", keys)
			}
			members := readArchive(t, root, keys, "data", c.Ext())
			for i := range 6 {
				if members[fmt.Sprintf("base/5/%d", 16000+i)] != 700<<10 {
					t.Errorf("file %d missing or cut across parts: %v", i, members)
				}
			}
			if codec == "" {
				// Uncompressed, parts split where Barman splits: once a part
				// holds more than the limit in whole 64 KiB steps.
				for _, k := range keys[:len(keys)-1] {
					fi, _ := os.Stat(filepath.Join(root, k))
					if fi.Size() <= 1<<20 {
						t.Errorf("%s closed at %d bytes, under the limit", k, fi.Size())
					}
				}
			}
		})
	}
}

func TestRunFailureLeavesFailedInfo(t *testing.T) {
	src := fixture(t)
	src.endErr = errors.New("stop backup: boom")
	root, _, err := run(t, src, "gz", 1<<20)
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("want FailedError, got %v", err)
	}
	if !src.aborted {
		t.Error("backup mode was not ended")
	}
	info, _ := os.ReadFile(filepath.Join(root, "main/base/20261124T120000/backup.info"))
	if !bytes.Contains(info, []byte("status=FAILED\n")) || !bytes.Contains(info, []byte("error=failure uploading data (stop backup: boom)\n")) {
		t.Errorf("backup.info:\n%s", info)
	}
	// No half-written object may stay behind.
	var leftovers []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(fi.Name(), ".tmp-") {
			leftovers = append(leftovers, p)
		}
		return nil
	})
	sort.Strings(leftovers)
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// Within one object every part but the last has the same size (R2
// refuses anything else), Barman's size when the data is large, smaller
// for small databases but never under 8 MiB of our choosing, and always
// enough parts to hold twice what an object may reach.
func TestPartSize(t *testing.T) {
	s3 := uploaders.Limits{MinPartSize: 5 << 20, MaxParts: 10000, MaxObjectSize: 1 << 40}
	azure := uploaders.Limits{MinPartSize: 64 << 10, MaxParts: 50000, MaxObjectSize: 1 << 40}
	for _, c := range []struct {
		l                  uploaders.Limits
		maxSize, data, min int64
		want               int64
	}{
		{s3, 100 << 30, 1 << 40, 0, 2 * (100 << 30 / 10000)}, // Barman's: 21.5 MB
		{s3, 100 << 30, 0, 0, 2 * (100 << 30 / 10000)},       // unknown data size
		{s3, 100 << 30, 800 << 20, 0, 8 << 20},               // a small database
		{s3, 100 << 30, 60 << 30, 0, 2 * (60 << 30 / 10000)}, // between the two
		{s3, 1 << 20, 1 << 40, 0, 5 << 20},                   // -S 1MiB: the store's minimum
		{s3, 1 << 40, 1 << 42, 0, 2 * (1 << 40 / 10000)},     // -S 1TiB: 220 MB
		{s3, 100 << 30, 800 << 20, 64 << 20, 64 << 20},       // --min-chunk-size
		{azure, 100 << 30, 1 << 40, 0, 2 * (100 << 30 / 50000)},
		{azure, 100 << 30, 800 << 20, 0, 2 * (100 << 30 / 50000)}, // Barman's 4.3 MB is under 8 MiB
	} {
		got := PartSize(c.maxSize, c.data, c.min, c.l)
		if got != c.want {
			t.Errorf("PartSize(-S %d, data %d, min %d, %+v) = %d, want %d", c.maxSize, c.data, c.min, c.l, got, c.want)
		}
		reach := min(c.maxSize, c.l.MaxObjectSize)
		if c.data > 0 {
			reach = min(reach, c.data)
		}
		// Barman rounds the size of one part down: allow its rounding.
		if got*int64(c.l.MaxParts) < 2*reach-2*int64(c.l.MaxParts) {
			t.Errorf("-S %d, data %d: %d parts of %d hold less than twice %d", c.maxSize, c.data, c.l.MaxParts, got, reach)
		}
	}
}

func TestRunStoresSymlinkedWALDir(t *testing.T) {
	src := fixture(t)
	wal := filepath.Join(filepath.Dir(src.pgdata), "waldisk")
	os.MkdirAll(filepath.Join(wal, "archive_status"), 0o700)
	write(t, filepath.Join(wal, "000000010000000000000001"), 4096, 9)
	os.RemoveAll(filepath.Join(src.pgdata, "pg_wal"))
	os.Symlink(wal, filepath.Join(src.pgdata, "pg_wal"))
	root, res, err := run(t, src, "", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range res.Objects {
		keys = append(keys, o.Key)
	}
	data := readArchive(t, root, keys, "data", "")
	for _, name := range []string{"pg_wal/", "pg_wal/archive_status/"} {
		if _, ok := data[name]; !ok {
			t.Errorf("%s missing: a restored PGDATA could not start", name)
		}
	}
	for name := range data {
		if strings.HasPrefix(name, "pg_wal/0000") {
			t.Errorf("WAL segment %s copied", name)
		}
	}
}

func TestRunRefusesATakenBackupID(t *testing.T) {
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	opts := Options{Store: store, ServerName: "main", BackupID: "20261124T120000", MaxArchiveSize: 100 << 30, Jobs: 1}
	opts.Codec, _ = tarball.CodecByName("", 0)
	if _, err := Run(context.Background(), fixture(t), opts); err != nil {
		t.Fatal(err)
	}
	before, _ := store.List(context.Background(), "")
	// The same ID again, as a second run started in the same second.
	src := fixture(t)
	if _, err := Run(context.Background(), src, opts); !errors.Is(err, ErrClash) {
		t.Fatalf("second run: %v, want a clash", err)
	}
	after, _ := store.List(context.Background(), "")
	if strings.Join(before, " ") != strings.Join(after, " ") {
		t.Errorf("the first backup changed: %v -> %v", before, after)
	}
	// A run in progress holds the lock.
	store.Create(context.Background(), "main/base/20261124T130000.lock", []byte("x"))
	opts.BackupID = "20261124T130000"
	locked := fixture(t)
	if _, err := Run(context.Background(), locked, opts); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("locked ID: %v", err)
	}
	// Neither refused run may touch PostgreSQL: no backup started.
	for name, s := range map[string]*dirSource{"taken ID": src, "locked ID": locked} {
		if s.begun || s.aborted {
			t.Errorf("%s: the refused run began (%v) or aborted (%v) a backup", name, s.begun, s.aborted)
		}
	}
}

func TestRunReportsProgress(t *testing.T) {
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	c, _ := tarball.CodecByName("gz", 0)
	p := &Progress{}
	res, err := Run(context.Background(), fixture(t), Options{
		Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: c,
		MaxArchiveSize: 100 << 30, Jobs: 2, BlockSize: 64 << 10, Progress: p,
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := store.List(context.Background(), "")
	var read int64
	for _, archive := range []string{"data", "16384"} {
		for _, n := range readArchive(t, root, keys, archive, c.Ext()) {
			read += n
		}
	}
	if got := p.Read.Load(); got != read {
		t.Errorf("read %d bytes, the archives hold %d", got, read)
	}
	if got := p.Stored.Load(); got != res.Bytes {
		t.Errorf("stored %d bytes, the result says %d", got, res.Bytes)
	}
	if p.Parts.Load() < 2 || p.Phase() != PhaseDone || !p.EstimateDone.Load() {
		t.Errorf("parts %d, phase %d, estimate done %v", p.Parts.Load(), p.Phase(), p.EstimateDone.Load())
	}
	// The sweep sees the same files but pg_wal, plus those the rules
	// leave out (postmaster.pid): close to what was read, never below.
	if est := p.Estimated.Load(); est < read-12-8192 || est > read+read/10 {
		t.Errorf("estimated %d bytes, read %d", est, read)
	}
}

// The phases are measured where they happen: the start and the stop as
// long as the source takes to answer, the copy from the first file read
// to the last, each after the one before; the journal's file reads all
// fall within the copy, and the stop is asked for once it has ended.
func TestRunMeasuresPhases(t *testing.T) {
	store, _ := uploaders.NewFileStore(t.TempDir())
	c, _ := tarball.CodecByName("gz", 0)
	src := fixture(t)
	src.beginDelay, src.endDelay = 150*time.Millisecond, 300*time.Millisecond
	p, j := &Progress{}, &Journal{}
	if _, err := Run(context.Background(), src, Options{
		Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: c,
		MaxArchiveSize: 100 << 30, Jobs: 2, BlockSize: 64 << 10, Progress: p, Journal: j,
	}); err != nil {
		t.Fatal(err)
	}
	ph := p.Phases()
	for name, s := range map[string]Span{"start": ph.Start, "copy": ph.Copy, "stop": ph.Stop, "upload tail": ph.UploadTail} {
		if !s.Done() || s.End.Before(s.Begin) {
			t.Errorf("%s: %v to %v", name, s.Begin, s.End)
		}
	}
	if d := ph.Start.Duration(); d < src.beginDelay || d > src.beginDelay+time.Second {
		t.Errorf("start took %s, the source %s", d, src.beginDelay)
	}
	if d := ph.Stop.Duration(); d < src.endDelay || d > src.endDelay+time.Second {
		t.Errorf("stop took %s, the source %s", d, src.endDelay)
	}
	if ph.Copy.Begin.Before(ph.Start.End) || ph.Stop.Begin.Before(ph.Copy.End) || ph.UploadTail.Begin != ph.Stop.End {
		t.Errorf("phases out of order: %+v", ph)
	}
	var reads int
	for _, e := range j.Events() {
		switch e.Kind {
		case EventFileRead:
			if e.Name == "backup_label" {
				continue // the stop's answer, not a file of PGDATA
			}
			reads++
			if e.Time.Before(ph.Copy.Begin) || e.Time.After(ph.Copy.End) {
				t.Errorf("%s read at %v, outside the copy %v to %v", e.Name, e.Time, ph.Copy.Begin, ph.Copy.End)
			}
		case EventStopRequested:
			if e.Time.Before(ph.Copy.End) {
				t.Errorf("stop asked at %v, before the copy ended at %v", e.Time, ph.Copy.End)
			}
		}
	}
	if reads < 8 {
		t.Errorf("the journal holds %d file reads", reads)
	}
}

// A notice is kept with its time, the latest one winning.
func TestProgressKeepsTheLatestNotice(t *testing.T) {
	p := &Progress{}
	if p.LastNotice() != nil {
		t.Fatal("a notice before any")
	}
	before := time.Now()
	p.Notify("NOTICE", "first")
	p.Notify("WARNING", "second")
	n := p.LastNotice()
	if n.Severity != "WARNING" || n.Message != "second" || n.Time.Before(before) {
		t.Errorf("notice %+v", n)
	}
}

// The run's memory limit grows with the files the sweep counts, by
// bytesPerFile each, pg_wal's left out: their records are held until
// backup_manifest is written after the stop.
func TestRunMemoryLimitCountsFiles(t *testing.T) {
	limit := func(src Source) int64 {
		var got int64
		store, _ := uploaders.NewFileStore(t.TempDir())
		c, _ := tarball.CodecByName("", 0)
		if _, err := Run(context.Background(), src, Options{
			Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: c,
			MaxArchiveSize: 100 << 30, Jobs: 2, BlockSize: 64 << 10,
			MemoryLimit: func(n int64) { got = n },
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	plain, many := fixture(t), fixture(t)
	const extra = 1000
	for i := range extra {
		write(t, filepath.Join(many.pgdata, "base", "5", fmt.Sprint(20000+i)), 0, 0)
		write(t, filepath.Join(many.pgdata, "pg_wal", fmt.Sprintf("%024d", i)), 0, 0)
	}
	a, b := limit(plain), limit(many)
	if a == 0 || b-a != extra*bytesPerFile {
		t.Errorf("memory limit %d with the fixture, %d with %d more files (and as many in pg_wal): want %d more",
			a, b, extra, extra*bytesPerFile)
	}
}
