package actors

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// walSource is dirSource with the WAL range and identity a live server
// reports.
type walSource struct {
	*dirSource
	version int64
}

func (w *walSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	l, err := w.dirSource.Begin(ctx, info)
	info.BeginXLOG, info.Timeline = "0/2C000028", pg.Int64(3)
	info.Version, info.SystemID = pg.Int64(w.version), "7711737989575920341"
	return l, err
}

func (w *walSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	info.EndXLOG = "0/2D000138"
	return w.dirSource.End(ctx, info)
}

// member is one regular tar member read back.
type member struct {
	archive, name string
	body          []byte
}

// members reads every regular member of every part, in stream order.
func members(t *testing.T, root string, keys []string) []member {
	t.Helper()
	var out []member
	for _, k := range keys {
		base := filepath.Base(k)
		if !strings.Contains(base, ".tar") {
			continue
		}
		archive, _, _ := strings.Cut(strings.Split(base, ".")[0], "_")
		raw, err := os.ReadFile(filepath.Join(root, k))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				out = append(out, member{archive, h.Name, b})
			}
		}
	}
	return out
}

func backupKeys(t *testing.T, root string) []string {
	store, _ := uploaders.NewFileStore(root)
	keys, _ := store.List(context.Background(), "")
	return keys
}

// checkManifest asserts the manifest is the data archive's last member and
// lists every other regular member, by PostgreSQL's path, with its size
// and the CRC-32C of its bytes as stored.
func checkManifest(t *testing.T, ms []member) *pg.BackupManifest {
	t.Helper()
	var last member
	stored := map[string][]byte{}
	for _, m := range ms {
		if m.archive == "data" {
			last = m
		}
		if m.name != pg.ManifestName {
			stored[pg.ManifestPath(m.archive, m.name)] = m.body
		}
	}
	if last.name != pg.ManifestName {
		t.Fatalf("the data archive's last member is %s, want backup_manifest", last.name)
	}
	man, err := pg.ParseManifest(last.body)
	if err != nil {
		t.Fatalf("%v\n%s", err, last.body)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, f := range man.Files {
		b, ok := stored[f.Path]
		switch {
		case !ok:
			t.Errorf("%s is in the manifest, in no archive", f.Path)
		case int64(len(b)) != f.Size || f.Checksum != pg.CRCHex(crc32.Checksum(b, table)) || f.Algorithm != "CRC32C":
			t.Errorf("%s: manifest %+v, stored %d bytes", f.Path, f, len(b))
		}
		delete(stored, f.Path)
	}
	for p := range stored {
		t.Errorf("%s is stored but not in the manifest", p)
	}
	return man
}

func TestManifestListsWhatIsStored(t *testing.T) {
	for _, c := range []struct {
		name    string
		version int64
		maxSize int64
	}{{"pg15", 150004, 100 << 30}, {"pg17-split", 170002, 1 << 20}} {
		t.Run(c.name, func(t *testing.T) {
			src := &walSource{dirSource: fixture(t), version: c.version}
			// A manifest left in PGDATA by the base backup the server was
			// made from is not this backup's.
			write(t, filepath.Join(src.pgdata, "backup_manifest"), 100, 42)
			root, _, err := run(t, src, "gz", c.maxSize)
			if err != nil {
				t.Fatal(err)
			}
			keys := backupKeys(t, root)
			ms := members(t, root, keys)
			n := 0
			for _, m := range ms {
				if m.name == pg.ManifestName || m.name == "./"+pg.ManifestName {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d backup_manifest members, want ours alone", n)
			}
			man := checkManifest(t, ms)
			if want := []pg.WALRange{{Timeline: 3, Start: 0x2C000028, End: 0x2D000138}}; len(man.WALRanges) != 1 || man.WALRanges[0] != want[0] {
				t.Errorf("WAL ranges %+v", man.WALRanges)
			}
			if c.version >= 170000 != (man.Version == 2 && man.SystemID == 7711737989575920341) {
				t.Errorf("version %d, system identifier %d", man.Version, man.SystemID)
			}
			paths := map[string]bool{}
			for _, f := range man.Files {
				paths[f.Path] = true
			}
			for _, p := range []string{"PG_VERSION", "global/pg_control", "base/5/16005", "backup_label",
				"pg_tblspc/16384/PG_15_202209061/5/16500"} {
				if !paths[p] {
					t.Errorf("%s missing from the manifest", p)
				}
			}
		})
	}
}

func TestHookModeKeepsBarmansManifest(t *testing.T) {
	dir, info := barmanBackupDir(t)
	runHook := func() []member {
		barman, err := pg.LoadBarmanBackup(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		store, _ := uploaders.NewFileStore(root)
		codec, _ := tarball.CodecByName("gz", 0)
		if _, err := Run(context.Background(), barman, Options{
			Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: codec,
			MaxArchiveSize: 100 << 30, Jobs: 1, Manifest: []byte(info),
		}); err != nil {
			t.Fatal(err)
		}
		return members(t, root, backupKeys(t, root))
	}

	// rsync-made: no manifest in data/, so the engine writes one.
	man := checkManifest(t, runHook())
	if man.Version != 1 || man.WALRanges[0] != (pg.WALRange{Timeline: 1, Start: 0x5000028, End: 0x5000100}) {
		t.Errorf("manifest from Barman's backup.info: %+v", man)
	}

	// pg_basebackup-made: its manifest is the backup's, kept as it is.
	barmans := pg.NewManifestBuilder()
	barmans.Add("PG_VERSION", 3, time.Unix(0, 0), 1)
	kept := barmans.Bytes(1, 0, []pg.WALRange{{Timeline: 1, Start: 0x5000028, End: 0x5000100}})
	os.WriteFile(filepath.Join(dir, "data", "backup_manifest"), kept, 0o600)
	if ms := runHook(); manifestsIn(ms) != 1 || !bytes.Equal(lastManifest(ms), kept) {
		t.Errorf("%d manifests, want Barman's alone, unchanged", manifestsIn(ms))
	}

	// rsync-made from a server pg_basebackup made: the manifest in data/
	// is of that older backup, so it is left out and ours is written.
	stale := barmans.Bytes(1, 0, []pg.WALRange{{Timeline: 1, Start: 0x3000028, End: 0x3000100}})
	os.WriteFile(filepath.Join(dir, "data", "backup_manifest"), stale, 0o600)
	ms := runHook()
	if manifestsIn(ms) != 1 || bytes.Equal(lastManifest(ms), stale) {
		t.Fatalf("%d manifests; the stale one kept: %v", manifestsIn(ms), bytes.Equal(lastManifest(ms), stale))
	}
	checkManifest(t, ms)
}

func manifestsIn(ms []member) int {
	n := 0
	for _, m := range ms {
		if m.archive == "data" && strings.TrimPrefix(m.name, "./") == pg.ManifestName {
			n++
		}
	}
	return n
}

func lastManifest(ms []member) []byte {
	var b []byte
	for _, m := range ms {
		if m.archive == "data" && strings.TrimPrefix(m.name, "./") == pg.ManifestName {
			b = m.body
		}
	}
	return b
}

// timelineSource is a standby's backup that started on timeline 2 and,
// the standby having followed its upstream through two promotions, ended
// on timeline 4, whose history file is in PGDATA's pg_wal.
type timelineSource struct {
	*dirSource
	history string // pg_wal/00000004.history; "" for none
}

func (s *timelineSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	l, err := s.dirSource.Begin(ctx, info)
	info.BeginXLOG, info.Timeline, info.BeginWAL = "0/2C000028", pg.Int64(2), "00000002000000000000002C"
	info.Version, info.SystemID = pg.Int64(160004), "7711737989575920341"
	if s.history != "" {
		os.WriteFile(filepath.Join(s.pgdata, "pg_wal", "00000004.history"), []byte(s.history), 0o600)
	}
	return l, err
}

func (s *timelineSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	info.EndXLOG, info.EndWAL = "0/2D000138", "00000004000000000000002D"
	return s.dirSource.End(ctx, info)
}

// A backup that crossed timelines has one WAL range per timeline, newest
// first, each ending where the next began, the oldest starting at the
// backup's start (backup_manifest.c, AddWALInfoToBackupManifest), or
// pg_verifybackup rejects the backup. Without the history no manifest is
// written: one range would be wrong.
func TestManifestWALRangesAcrossTimelines(t *testing.T) {
	history := "1\t0/1000000\tno recovery target specified\n\n" +
		"2\t0/2C400000\tno recovery target specified\n" +
		"3\t0/2C800000\tno recovery target specified\n"
	root, _, err := run(t, &timelineSource{dirSource: fixture(t), history: history}, "gz", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	man := checkManifest(t, members(t, root, backupKeys(t, root)))
	want := []pg.WALRange{
		{Timeline: 4, Start: 0x2C800000, End: 0x2D000138},
		{Timeline: 3, Start: 0x2C400000, End: 0x2C800000},
		{Timeline: 2, Start: 0x2C000028, End: 0x2C400000},
	}
	if fmt.Sprint(man.WALRanges) != fmt.Sprint(want) {
		t.Errorf("WAL ranges %+v, want %+v", man.WALRanges, want)
	}

	root, _, err = run(t, &timelineSource{dirSource: fixture(t)}, "gz", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	if n := manifestsIn(members(t, root, backupKeys(t, root))); n != 0 {
		t.Errorf("%d backup_manifest written without the end timeline's history", n)
	}
}
