package actors

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// The compact listing has what os.ReadDir has, in its order: names and
// the type of each entry, a symbolic link as a link.
func TestReadDirListsAsOSReadDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 2500 { // more than one batch
		os.WriteFile(filepath.Join(dir, fmt.Sprint(i*7919%10007)), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, "base"), 0o700)
	os.Symlink(filepath.Join(dir, "base"), filepath.Join(dir, "link"))
	os.WriteFile(filepath.Join(dir, "é \n odd"), nil, 0o600)
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.len() != len(want) {
		t.Fatalf("%d entries, os.ReadDir has %d", got.len(), len(want))
	}
	for i, w := range want {
		if name, mode := got.entry(i); name != w.Name() || mode != w.Type() {
			t.Fatalf("entry %d: %q %v, os.ReadDir: %q %v", i, name, mode, w.Name(), w.Type())
		}
	}
	if _, err := readDir(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a missing directory: %v", err)
	}
}

// BenchmarkReadDirMemory reports what a listing holds per entry
// (heap-bytes/entry) for a directory of 50,000 relation files, as the
// walker holds it while it reads that directory.
func BenchmarkReadDirMemory(b *testing.B) {
	dir := b.TempDir()
	const n = 50000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(100000+i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := readDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/entry")
		runtime.KeepAlive(l)
	}
}

// liveSource is dirSource as a running server's backup: its PGDATA is
// live, not a copy Barman made.
type liveSource struct{ *dirSource }

func (l liveSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	layout, err := l.dirSource.Begin(ctx, info)
	if layout != nil {
		layout.Live = true
	}
	return layout, err
}

// tarMember is one member of an uncompressed archive read back, of any
// type.
type tarMember struct {
	hdr  *tar.Header
	body []byte
}

// archiveMembers reads every member of every uncompressed part of base
// ("data" or a tablespace OID), in stream order.
func archiveMembers(t *testing.T, root, base string) []tarMember {
	t.Helper()
	store, _ := uploaders.NewFileStore(root)
	keys, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []tarMember
	for _, k := range keys {
		name := filepath.Base(k)
		if !strings.HasPrefix(name, base+".tar") && !strings.HasPrefix(name, base+"_") {
			continue
		}
		f, err := os.Open(filepath.Join(root, k))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s %s: %v", k, h.Name, err)
			}
			out = append(out, tarMember{h, b})
		}
		f.Close()
	}
	return out
}

// rootMembers are the members of ms named name at the archive's root,
// spelt "./NAME" or "NAME".
func rootMembers(ms []tarMember, name string) []tarMember {
	var out []tarMember
	for _, m := range ms {
		if strings.TrimPrefix(m.hdr.Name, "./") == name {
			out = append(out, m)
		}
	}
	return out
}

// A backup_label or tablespace_map at the root of a running server's
// PGDATA is an exclusive backup's leftover (basebackup.c, excludeFiles):
// the archive holds the backup_label of the stop alone, and no
// tablespace_map, which would make the restored server rebuild pg_tblspc
// from stale locations.
func TestLivePGDataLeavesOutExclusiveBackupFiles(t *testing.T) {
	src := fixture(t)
	stale := "START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nLABEL: exclusive\n"
	os.WriteFile(filepath.Join(src.pgdata, "backup_label"), []byte(stale), 0o600)
	os.WriteFile(filepath.Join(src.pgdata, "tablespace_map"), []byte("16384 /srv/old/tbs\n"), 0o600)
	// Only the root's are PostgreSQL's files.
	write(t, filepath.Join(src.pgdata, "base", "5", "tablespace_map"), 10, 8)
	root, _, err := run(t, liveSource{src}, "", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	data := archiveMembers(t, root, "data")
	labels := rootMembers(data, "backup_label")
	if len(labels) != 1 || string(labels[0].body) != "LABEL: test\n" {
		var got []string
		for _, m := range labels {
			got = append(got, fmt.Sprintf("%s=%q", m.hdr.Name, m.body))
		}
		t.Errorf("backup_label members %v, want the stop's alone", got)
	}
	if maps := rootMembers(data, "tablespace_map"); len(maps) != 0 {
		t.Errorf("the stale tablespace_map is stored: %q", maps[0].body)
	}
	found := false
	for _, m := range data {
		found = found || m.hdr.Name == "base/5/tablespace_map"
	}
	if !found {
		t.Errorf("base/5/tablespace_map, not at the root, is left out")
	}
}

// A backup Barman took holds its own backup_label in data/, and hook mode
// adds none: it is stored, and so is a tablespace_map beside it.
func TestHookModeKeepsItsBackupLabel(t *testing.T) {
	dir, info := barmanBackupDir(t)
	label := "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nLABEL: Barman backup main 20261124T120000\n"
	os.WriteFile(filepath.Join(dir, "data", "backup_label"), []byte(label), 0o600)
	os.WriteFile(filepath.Join(dir, "data", "tablespace_map"), []byte("16384 /srv/tbs1\n"), 0o600)
	barman, err := pg.LoadBarmanBackup(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	codec, _ := tarball.CodecByName("", 0)
	if _, err := Run(context.Background(), barman, Options{
		Store: store, ServerName: "main", BackupID: "20261124T120000", Codec: codec,
		MaxArchiveSize: 100 << 30, Jobs: 1, Manifest: []byte(info),
	}); err != nil {
		t.Fatal(err)
	}
	data := archiveMembers(t, root, "data")
	if labels := rootMembers(data, "backup_label"); len(labels) != 1 || string(labels[0].body) != label {
		t.Errorf("%d backup_label members, want Barman's alone", len(labels))
	}
	if len(rootMembers(data, "tablespace_map")) != 1 {
		t.Errorf("the tablespace_map of Barman's backup is left out")
	}
}

// A directory whose contents a backup leaves out is stored empty when it
// is a symbolic link too, with its target's mode and time, as
// pg_basebackup stores it (basebackup.c, excludeDirContents and
// convert_link_to_directory): without pg_notify, pg_replslot... a
// restored cluster does not start. Other links to directories are left
// out, as Barman leaves them out.
func TestRunStoresSymlinkedEmptiedDirs(t *testing.T) {
	src := fixture(t)
	elsewhere := filepath.Join(filepath.Dir(src.pgdata), "elsewhere")
	mtime := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	linked := map[string]string{ // link in PGDATA: its target's name
		"pg_stat_tmp": "stats-tmpfs", "pg_notify": "notify", "pg_replslot": "slots", "pg_dynshmem": "dsm",
		"pg_serial": "serial", "pg_snapshots": "snapshots", "pg_subtrans": "subtrans", "log": "logs",
		"base/5/pg_stat_tmp": "deep-stats", "other": "other",
	}
	for link, target := range linked {
		dir := filepath.Join(elsewhere, target)
		write(t, filepath.Join(dir, "0000"), 100, 11)
		os.Chmod(dir, 0o750)
		os.Chtimes(dir, mtime, mtime)
		if err := os.Symlink(dir, filepath.Join(src.pgdata, link)); err != nil {
			t.Fatal(err)
		}
	}
	root, _, err := run(t, src, "", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	data := archiveMembers(t, root, "data")
	byName := map[string]*tar.Header{}
	for _, m := range data {
		byName[m.hdr.Name] = m.hdr
	}
	for link := range linked {
		h, ok := byName[link+"/"]
		switch {
		case link == "other":
			if ok {
				t.Errorf("%s, a link to a directory of no rule, is stored", link)
			}
		case !ok:
			t.Errorf("%s/ missing: a restored cluster lacks it", link)
		case h.Typeflag != tar.TypeDir || h.Mode&0o777 != 0o750 || !h.ModTime.Equal(mtime):
			t.Errorf("%s/: type %c, mode %o, mtime %v; want a directory, mode 750, mtime %v", link, h.Typeflag, h.Mode, h.ModTime, mtime)
		}
		for name := range byName {
			if strings.HasPrefix(name, link+"/") && name != link+"/" {
				t.Errorf("%s copied from behind a link", name)
			}
		}
	}
}
