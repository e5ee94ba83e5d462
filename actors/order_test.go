package actors

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// stopWatcher wraps a Source. When the engine asks it to stop the backup
// it notes how many file bytes the engine had read into archives by then,
// and then changes every file under roots, as a busy server changes its
// files once the backup has ended. A file read after the stop would carry
// those changes into the archive.
type stopWatcher struct {
	Source
	progress *Progress
	roots    []string
	// readAtStop is Progress.Read when End was called; ended tells it was.
	readAtStop int64
	ended      bool
}

func (s *stopWatcher) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	s.readAtStop, s.ended = s.progress.Read.Load(), true
	for _, root := range s.roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(path, bytes.Repeat([]byte("after the stop "), int(fi.Size())/15+1)[:fi.Size()], 0o600)
		})
		if err != nil {
			return nil, err
		}
	}
	return s.Source.End(ctx, info)
}

// snapshot is every regular file under root, by its path relative to root.
func snapshot(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			files[filepath.ToSlash(rel)] = b
		}
		return nil
	})
	return files
}

// archiveContents decompresses every bzip2 object of archive base, in
// order, and returns each regular member's content.
func archiveContents(t *testing.T, root string, keys []string, base string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, k := range keys {
		name := filepath.Base(k)
		if !strings.HasPrefix(name, base+".") && !strings.HasPrefix(name, base+"_") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(root, k))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(bzip2.NewReader(bytes.NewReader(raw)))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s %s: %v", k, h.Name, err)
			}
			out[h.Name] = b
		}
	}
	return out
}

// manyFiles lays out PGDATA and a tablespace with many small relation
// files, a few large ones, and a configuration file outside PGDATA: more
// entries than any queue between the walker and the sealer holds.
func manyFiles(t *testing.T) (pgdata, tbs, confDir string) {
	dir := t.TempDir()
	pgdata, tbs, confDir = filepath.Join(dir, "data"), filepath.Join(dir, "tbs"), filepath.Join(dir, "etc")
	write(t, filepath.Join(pgdata, "PG_VERSION"), 3, 1)
	write(t, filepath.Join(pgdata, "global", "pg_control"), 8192, 2)
	for i := range 40 {
		write(t, filepath.Join(pgdata, "global", fmt.Sprint(1200+i)), 8192, int64(100+i))
	}
	for i := range 300 {
		write(t, filepath.Join(pgdata, "base", "5", fmt.Sprint(16000+i)), 4<<10, int64(1000+i))
	}
	for i := range 2 {
		write(t, filepath.Join(pgdata, "base", "5", fmt.Sprint(17000+i)), 512<<10, int64(2000+i))
	}
	write(t, filepath.Join(pgdata, "pg_xact", "0000"), 8192, 3)
	write(t, filepath.Join(pgdata, "pg_multixact", "offsets", "0000"), 8192, 4)
	os.MkdirAll(filepath.Join(pgdata, "pg_wal"), 0o700)
	os.MkdirAll(filepath.Join(pgdata, "pg_tblspc"), 0o700)
	os.Symlink(tbs, filepath.Join(pgdata, "pg_tblspc", "16384"))
	for i := range 200 {
		write(t, filepath.Join(tbs, "PG_15_202209061", "5", fmt.Sprint(16500+i)), 4<<10, int64(3000+i))
	}
	write(t, filepath.Join(confDir, "postgresql.conf"), 2000, 5)
	return pgdata, tbs, confDir
}

// layoutSource serves a fixed layout, standing in for the server's side of
// the backup API.
type layoutSource struct{ layout *pg.Layout }

func (l *layoutSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	info.PGData, info.Status, info.Tablespaces = l.layout.PGData, pg.StatusStarted, l.layout.Tablespaces
	return l.layout, nil
}

func (l *layoutSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	return []byte("LABEL: test\n"), nil
}

func (l *layoutSource) Abort(ctx context.Context) {}

// TestEveryFileIsReadBeforeTheStop is PostgreSQL's rule for a base backup
// taken with the low-level API: the copy happens between the start and the
// stop of the backup. The archive must hold every file as it was before
// the stop, whatever is still queued for compression or upload; bzip2 on
// one compressor keeps the pipeline behind the walk.
func TestEveryFileIsReadBeforeTheStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxSize int64
	}{
		{"one archive each", 100 << 30},
		{"split archives", 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgdata, tbs, confDir := manyFiles(t)
			before := map[string]map[string][]byte{"data": snapshot(t, pgdata), "16384": snapshot(t, tbs)}
			conf := snapshot(t, confDir)
			layout := &pg.Layout{PGData: pgdata, MajorVersion: "15",
				Tablespaces: []pg.Tablespace{{Name: "tbs1", OID: 16384, Location: tbs}},
				ConfigFiles: []pg.ConfigFile{{Kind: "config_file", Path: filepath.Join(confDir, "postgresql.conf")}}}
			progress := &Progress{}
			journal := &Journal{}
			src := &stopWatcher{Source: &layoutSource{layout: layout}, progress: progress, roots: []string{pgdata, tbs, confDir}}

			root := t.TempDir()
			store, _ := uploaders.NewFileStore(root)
			codec, _ := tarball.CodecByName("bz2", 1)
			_, err := Run(context.Background(), src, Options{
				Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: codec,
				MaxArchiveSize: tc.maxSize, Jobs: 1, Compressors: 1, BlockSize: 64 << 10,
				Progress: progress, Journal: journal,
			})
			if err != nil {
				t.Fatal(err)
			}
			keys, _ := store.List(context.Background(), "")
			if tc.maxSize < 1<<20 && !strings.Contains(strings.Join(keys, " "), "/data_0001.tar.bz2") {
				t.Fatalf("data was not split: %v", keys)
			}
			var total int64
			var late []string
			for archive, files := range before {
				got := archiveContents(t, root, keys, archive)
				members := map[string][]byte{}
				for rel, b := range files {
					members[tarMemberName(rel)] = b
				}
				if archive == "data" {
					for name, b := range conf {
						members[name] = b // under its base name, as Barman adds it
					}
				}
				for name, want := range members {
					total += int64(len(want))
					if b, ok := got[name]; !ok {
						t.Errorf("%s: %s missing", archive, name)
					} else if !bytes.Equal(b, want) {
						late = append(late, archive+":"+name)
					}
				}
			}
			if len(late) > 0 {
				sort.Strings(late)
				t.Errorf("%d files were read after the backup was stopped, among them %v", len(late), late[:min(len(late), 5)])
			}
			if !src.ended {
				t.Fatal("the backup was never stopped")
			}
			if src.readAtStop != total {
				t.Errorf("read %d of %d bytes when the stop was requested", src.readAtStop, total)
			}
			checkJournal(t, journal)
		})
	}
}

// tarMemberName is the member a file relative to an archive's root is
// stored as (Barman's names: "./NAME" at the root).
func tarMemberName(rel string) string {
	if !strings.Contains(rel, "/") {
		return "./" + rel
	}
	return rel
}

// checkJournal asserts the engine's own record: every file read, the stop
// requested after the last of them, and only backup_label after it.
func checkJournal(t *testing.T, j *Journal) {
	t.Helper()
	events := j.Events()
	stop := -1
	for i, e := range events {
		if e.Kind == EventStopRequested {
			if stop >= 0 {
				t.Fatalf("stop requested twice: %v", events)
			}
			stop = i
		}
	}
	if stop < 1 {
		t.Fatalf("no file read before the stop was requested: %d events", len(events))
	}
	for _, e := range events[stop+1:] {
		if e.Kind == EventFileRead && e.Name != "backup_label" {
			t.Errorf("%s/%s read after the stop was requested", e.Archive, e.Name)
		}
	}
	if last := events[stop-1]; last.Kind != EventFileRead || last.Name != "postgresql.conf" {
		t.Errorf("last event before the stop %+v, want the configuration file read", last)
	}
}

// barmanBackupDir lays out a backup as Barman's server keeps it, for a
// hook run: PGDATA in data/, tablespace 16384 in 16384/, and backup.info
// (returned too) with its WAL range.
func barmanBackupDir(t *testing.T) (dir, info string) {
	dir = t.TempDir()
	pgdata, tbs, _ := manyFiles(t)
	os.Rename(pgdata, filepath.Join(dir, "data"))
	os.Rename(tbs, filepath.Join(dir, "16384"))
	info = "status=DONE\nversion=150004\ncompression=None\ntablespaces=[('tbs1', 16384, '/srv/tbs1')]\n" +
		"begin_xlog=0/5000028\nend_xlog=0/5000100\ntimeline=1\nsystemid=42\n"
	if err := os.WriteFile(filepath.Join(dir, "backup.info"), []byte(info), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, info
}

// TestHookModeReadsBeforeItEnds gives the same guarantee for a backup
// Barman took: nothing is stopped there, but the engine still reads every
// file before it tells the source the copy is over.
func TestHookModeReadsBeforeItEnds(t *testing.T) {
	dir, info := barmanBackupDir(t)
	before := map[string]map[string][]byte{"data": snapshot(t, filepath.Join(dir, "data")),
		"16384": snapshot(t, filepath.Join(dir, "16384"))}
	barman, err := pg.LoadBarmanBackup(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	progress, journal := &Progress{}, &Journal{}
	src := &stopWatcher{Source: barman, progress: progress, roots: []string{filepath.Join(dir, "data"), filepath.Join(dir, "16384")}}
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	codec, _ := tarball.CodecByName("bz2", 1)
	if _, err := Run(context.Background(), src, Options{
		Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: codec,
		MaxArchiveSize: 100 << 30, Jobs: 1, Compressors: 1, BlockSize: 64 << 10,
		Progress: progress, Journal: journal, Manifest: []byte(info),
	}); err != nil {
		t.Fatal(err)
	}
	keys, _ := store.List(context.Background(), "")
	var late []string
	for archive, files := range before {
		got := archiveContents(t, root, keys, archive)
		for rel, want := range files {
			if !bytes.Equal(got[tarMemberName(rel)], want) {
				late = append(late, archive+":"+rel)
			}
		}
	}
	if len(late) > 0 {
		sort.Strings(late)
		t.Errorf("%d files were read after the copy was declared over, among them %v", len(late), late[:min(len(late), 5)])
	}
	for _, e := range journal.Events() {
		if e.Kind == EventFileRead && e.Name == "backup_label" {
			t.Errorf("hook mode added a backup_label of its own")
		}
	}
}
