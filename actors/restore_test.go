package actors

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// serverSource is dirSource with the WAL range and identity a live server
// reports, so the backup's manifest can be checked against backup.info.
type serverSource struct{ *dirSource }

func (s serverSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	l, err := s.dirSource.Begin(ctx, info)
	info.Version, info.SystemID, info.XLOGSegmentSize = pg.Int64(150004), "7711737989575920341", pg.Int64(16<<20)
	info.BeginXLOG, info.Timeline = "0/2C000028", pg.Int64(1)
	info.BeginWAL, info.BeginOffset = "00000001000000000000002C", pg.Int64(40)
	return l, err
}

func (s serverSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	label, err := s.dirSource.End(ctx, info)
	info.EndXLOG, info.EndWAL = "0/2D000138", "00000001000000000000002D"
	text := string(label)
	info.BackupLabel = &text
	return label, err
}

const restoreID = "20261124T120000"

// restoreFrom restores the backup stored under root into dir/data, the
// tablespace moved to dir/tbs.
func restoreFrom(t *testing.T, root, dir string, jobs int, chunk int64) (*RestoreReport, error) {
	t.Helper()
	store, _ := uploaders.NewFileStore(root)
	r, _ := uploaders.ReaderOf(store)
	return Restore(context.Background(), RestoreOptions{Store: store, Reader: r, Server: "main", Backup: restoreID,
		Jobs: jobs, ChunkSize: chunk, RecoveryDir: filepath.Join(dir, "data"),
		Tablespaces: map[string]string{"tbs1": filepath.Join(dir, "tbs")}})
}

// sameTree compares a restored directory with its source: every regular
// file's bytes, mode and mtime, except what the backup leaves out.
func sameTree(t *testing.T, src, dst string, skip func(rel string) bool) int {
	t.Helper()
	n := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, p)
		if skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n++
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: restored %d bytes (%v), source %d", rel, len(got), err, len(want))
			return nil
		}
		wi, _ := os.Stat(p)
		gi, _ := os.Stat(filepath.Join(dst, rel))
		if gi.Mode() != wi.Mode() || !gi.ModTime().Equal(wi.ModTime().Truncate(time.Second)) && !gi.ModTime().Equal(wi.ModTime()) {
			t.Errorf("%s: restored %v %v, source %v %v", rel, gi.Mode(), gi.ModTime(), wi.Mode(), wi.ModTime())
		}
		return nil
	})
	return n
}

func TestRestoreEveryCodecSplitAndParallel(t *testing.T) {
	for _, c := range []struct {
		codec   string
		maxSize int64
		jobs    int
		chunk   int64
	}{
		{"", 100 << 30, 1, 0}, {"gz", 100 << 30, 2, 0}, {"bz2", 1 << 20, 3, 256 << 10},
		{"snappy", 1 << 20, 2, 0}, {"lz4", 100 << 30, 4, 64 << 10}, {"zstd", 512 << 10, 4, 128 << 10},
	} {
		t.Run(c.codec, func(t *testing.T) {
			src := fixture(t)
			os.Chmod(filepath.Join(src.pgdata, "PG_VERSION"), 0o400)
			root, _, err := run(t, serverSource{src}, c.codec, c.maxSize)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			rep, err := restoreFrom(t, root, dir, c.jobs, c.chunk)
			if err != nil {
				t.Fatalf("restore: %v\n%s", err, problems(rep))
			}
			if !rep.Restored || rep.Manifest != "checked" || rep.FilesChecked == 0 || rep.FilesChecked != rep.ManifestFiles {
				t.Errorf("report: restored %v, manifest %s, %d of %d files checked", rep.Restored, rep.Manifest, rep.FilesChecked, rep.ManifestFiles)
			}
			data, tbs := filepath.Join(dir, "data"), filepath.Join(dir, "tbs")
			n := sameTree(t, src.pgdata, data, func(rel string) bool {
				return rel == "postmaster.pid" || rel == "pg_wal" || rel == "pg_tblspc"
			})
			if n < 8 {
				t.Errorf("only %d files compared", n)
			}
			sameTree(t, filepath.Join(src.tbs, "PG_15_202209061"), filepath.Join(tbs, "PG_15_202209061"), func(string) bool { return false })
			if target, err := os.Readlink(filepath.Join(data, "pg_tblspc", "16384")); err != nil || target != tbs {
				t.Errorf("pg_tblspc/16384 -> %q (%v), want %s", target, err, tbs)
			}
			if entries, err := os.ReadDir(filepath.Join(data, "pg_wal")); err != nil {
				t.Errorf("pg_wal: %v", err)
			} else if len(entries) > 1 {
				t.Errorf("pg_wal holds %d entries, want at most archive_status", len(entries))
			}
			for _, f := range []string{"backup_label", "backup_manifest"} {
				if _, err := os.Stat(filepath.Join(data, f)); err != nil {
					t.Errorf("%s not restored: %v", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
				t.Error("postmaster.pid restored, though the backup leaves it out")
			}
		})
	}
}

func TestRestoreRefusesANonEmptyDestination(t *testing.T) {
	src := fixture(t)
	root, _, err := run(t, serverSource{src}, "", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{"data", "tbs"} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, where, "left-over"), 10, 1)
		_, err := restoreFrom(t, root, dir, 2, 0)
		if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), filepath.Join(dir, where)+" already exists and it is not empty") {
			t.Errorf("%s not empty: %v", where, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err == nil {
			t.Errorf("%s not empty: files were restored all the same", where)
		}
	}
}

// damage runs a backup, damages it with spoil, restores it and returns
// the error and what the restore left.
func damage(t *testing.T, codec string, maxSize int64, spoil func(folder string)) (error, string) {
	t.Helper()
	src := fixture(t)
	root, _, err := run(t, serverSource{src}, codec, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	spoil(filepath.Join(root, "main", "base", restoreID))
	dir := t.TempDir()
	_, err = restoreFrom(t, root, dir, 3, 64<<10)
	return err, filepath.Join(dir, "data")
}

func TestRestoreFailsOnDamageAndCannotStart(t *testing.T) {
	for _, c := range []struct {
		name, codec string
		maxSize     int64
		spoil       func(t *testing.T, folder string)
		want        string
	}{
		{"flipped byte", "", 100 << 30, func(t *testing.T, folder string) {
			flipByte(t, filepath.Join(folder, "data.tar"), 600<<10)
		}, "checksum mismatch"},
		{"flipped byte compressed", "zstd", 100 << 30, func(t *testing.T, folder string) {
			flipByte(t, filepath.Join(folder, "data.tar.zst"), 2000)
		}, "data.tar.zst"},
		{"truncated", "gz", 100 << 30, func(t *testing.T, folder string) {
			p := filepath.Join(folder, "data.tar.gz")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()/2)
		}, "data.tar.gz: truncated"},
		{"missing volume", "", 1 << 20, func(t *testing.T, folder string) {
			if err := os.Remove(filepath.Join(folder, "data_0001.tar")); err != nil {
				t.Fatal(err)
			}
		}, "data_0001.tar: missing"},
		{"missing archive", "", 100 << 30, func(t *testing.T, folder string) {
			os.Remove(filepath.Join(folder, "16384.tar"))
		}, "16384.tar: missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, data := damage(t, c.codec, c.maxSize, func(folder string) { c.spoil(t, folder) })
			var de *DamageError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore of a damaged backup: %v, want a DamageError with %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(data, "global", "pg_control")); err == nil {
				t.Error("global/pg_control written by a restore that failed")
			}
		})
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[min(at, int64(len(b))-1)] ^= 0x5a
	os.WriteFile(path, b, 0o600)
}

// storeArchives stores hand-made archives and a backup.info without a
// manifest, as a Barman backup has.
func storeArchives(t *testing.T, archives map[string][]tar.Header, bodies map[string]string) string {
	t.Helper()
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	for name, headers := range archives {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range headers {
			h.Size = int64(len(bodies[name+":"+h.Name]))
			if h.Typeflag != tar.TypeReg {
				h.Size = 0
			}
			h.Format, h.ModTime = tar.FormatPAX, time.Unix(1700000000, 0)
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(bodies[name+":"+h.Name]))
		}
		tw.Close()
		store.Put(context.Background(), "main/base/"+restoreID+"/"+name, buf.Bytes())
	}
	info := "backup_label=" + pg.PyRepr("LABEL: x\n") + "\nbegin_xlog=0/5000028\nend_xlog=0/5000100\nstatus=DONE\ntimeline=1\nversion=150004\ntablespaces=None\n"
	store.Put(context.Background(), "main/base/"+restoreID+"/backup.info", []byte(info))
	return root
}

func TestRestoreLaterMemberWinsWhateverVolumeIsReadFirst(t *testing.T) {
	reg := func(name string, mode int64) tar.Header {
		return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}
	}
	archives := map[string][]tar.Header{
		"data.tar":      {{Typeflag: tar.TypeDir, Name: ".", Mode: 0o700}, reg("./PG_VERSION", 0o600), reg("global/pg_control", 0o600), reg("base/1/1", 0o400)},
		"data_0001.tar": {reg("base/1/1", 0o600), {Typeflag: tar.TypeSymlink, Name: "pg_wal", Linkname: "/elsewhere/wal"}, reg("backup_label", 0o600)},
	}
	bodies := map[string]string{"data.tar:./PG_VERSION": "15\n", "data.tar:global/pg_control": strings.Repeat("c", 8192),
		"data.tar:base/1/1": strings.Repeat("first", 20000), "data_0001.tar:base/1/1": "second", "data_0001.tar:backup_label": "LABEL: x\n"}
	root := storeArchives(t, archives, bodies)
	for _, jobs := range []int{1, 2, 4} {
		dir := t.TempDir()
		rep, err := restoreFrom(t, root, dir, jobs, 4<<10)
		if err != nil {
			t.Fatalf("-J %d: %v\n%s", jobs, err, problems(rep))
		}
		data := filepath.Join(dir, "data")
		if b, _ := os.ReadFile(filepath.Join(data, "base/1/1")); string(b) != "second" {
			t.Errorf("-J %d: base/1/1 holds %d bytes, want the later member's", jobs, len(b))
		}
		if target, _ := os.Readlink(filepath.Join(data, "pg_wal")); target != "/elsewhere/wal" {
			t.Errorf("-J %d: pg_wal -> %q, want the archive's symbolic link", jobs, target)
		}
		if rep.Manifest != "absent" {
			t.Errorf("-J %d: manifest %q, want absent", jobs, rep.Manifest)
		}
	}
}

func TestRestoreRefusesMembersOutsideTheirDirectory(t *testing.T) {
	for _, name := range []string{"../escape", "base/../../escape", "/etc/escape"} {
		archives := map[string][]tar.Header{"data.tar": {{Typeflag: tar.TypeReg, Name: "global/pg_control", Mode: 0o600},
			{Typeflag: tar.TypeReg, Name: name, Mode: 0o600}}}
		root := storeArchives(t, archives, map[string]string{"data.tar:" + name: "x", "data.tar:global/pg_control": "c"})
		dir := t.TempDir()
		_, err := restoreFrom(t, root, dir, 1, 0)
		var de *DamageError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "outside the archive's directory") {
			t.Errorf("member %q: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
			t.Errorf("member %q was written outside", name)
		}
	}
}

func TestMemberPath(t *testing.T) {
	for in, want := range map[string]string{".": "", "./": "", "./PG_VERSION": "PG_VERSION", "base/1/2": "base/1/2", "base//1/": "base/1"} {
		if got, err := memberPath(in); err != nil || got != want {
			t.Errorf("memberPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestAutoPicksTheBackupTheTargetNeeds(t *testing.T) {
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	put := func(id, status, end, endXLOG string, tli int) {
		info := "status=" + status + "\nend_time=" + end + "\nend_xlog=" + endXLOG + "\ntimeline=" + string(rune('0'+tli)) + "\n"
		store.Put(context.Background(), "main/base/"+id+"/backup.info", []byte(info))
	}
	put("20261201T000000", "DONE", "2026-12-01 00:10:00+00:00", "0/5000000", 1)
	put("20261202T000000", "DONE", "2026-12-02 00:10:00+00:00", "0/9000000", 2)
	put("20261203T000000", "FAILED", "2026-12-03 00:10:00+00:00", "0/A000000", 2)
	store.Put(context.Background(), "main/wals/0000000300000000/000000030000000000000001", []byte("x"))
	r, _ := uploaders.ReaderOf(store)
	for _, c := range []struct {
		name   string
		target RecoveryTarget
		want   string
	}{
		{"auto", RecoveryTarget{}, "20261202T000000"},
		{"latest", RecoveryTarget{}, "20261202T000000"},
		{"oldest", RecoveryTarget{}, "20261201T000000"},
		{"last-failed", RecoveryTarget{}, "20261203T000000"},
		{"auto", RecoveryTarget{Time: "2026-12-01 12:00:00+00"}, "20261201T000000"},
		{"auto", RecoveryTarget{Time: "2026-12-02T00:10:00Z"}, "20261202T000000"},
		{"auto", RecoveryTarget{Time: "2026-12-02 01:10:00 +0100"}, "20261202T000000"},
		{"auto", RecoveryTarget{Time: "20261202T011000+01:00"}, "20261202T000000"},
		{"auto", RecoveryTarget{LSN: "0/8FFFFFF"}, "20261201T000000"},
		{"auto", RecoveryTarget{TLI: "1"}, "20261201T000000"},
		{"auto", RecoveryTarget{TLI: "2", LSN: "0/5000000"}, ""},
		{"auto", RecoveryTarget{Time: "2026-11-30 00:00:00+00"}, ""},
		{"auto", RecoveryTarget{TLI: "latest"}, ""},
	} {
		got, err := resolve(context.Background(), r, "main/base/", "main", c.name, c.target)
		if c.want == "" {
			if !errors.Is(err, ErrNoBackup) || !strings.Contains(err.Error(), "Cannot find any candidate backup for recovery.") {
				t.Errorf("%s %+v: %q, %v; want no candidate", c.name, c.target, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %+v: %q, %v; want %s", c.name, c.target, got, err, c.want)
		}
	}
	var nb *NoBackupError
	if _, err := resolve(context.Background(), r, "main/base/", "main", "nightly", RecoveryTarget{}); !errors.As(err, &nb) || !nb.Unknown ||
		err.Error() != "Unknown backup 'nightly' for server 'main'" {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := resolve(context.Background(), r, "main/base/", "main", "auto", RecoveryTarget{Time: "soon"}); !errors.As(err, &nb) || !nb.Unknown {
		t.Errorf("bad target time: %v", err)
	}
}

// --no-verify skips the files' checksums, never the backup_label: without
// it PostgreSQL would recover from pg_control's checkpoint, not the
// backup's start.
func TestNoVerifyStillNeedsTheBackupLabel(t *testing.T) {
	archives := map[string][]tar.Header{"data.tar": {{Typeflag: tar.TypeReg, Name: "./PG_VERSION", Mode: 0o600},
		{Typeflag: tar.TypeReg, Name: "global/pg_control", Mode: 0o600}}}
	root := storeArchives(t, archives, map[string]string{"data.tar:./PG_VERSION": "15\n", "data.tar:global/pg_control": "c"})
	store, _ := uploaders.NewFileStore(root)
	r, _ := uploaders.ReaderOf(store)
	dir := t.TempDir()
	_, err := Restore(context.Background(), RestoreOptions{Store: store, Reader: r, Server: "main", Backup: restoreID,
		RecoveryDir: filepath.Join(dir, "data"), NoVerify: true})
	var de *DamageError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "backup_label: missing") {
		t.Fatalf("--no-verify without backup_label: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "global", "pg_control")); err == nil {
		t.Error("global/pg_control written without backup_label")
	}
}

// setTablespaces replaces the stored backup.info's tablespaces.
func setTablespaces(t *testing.T, root, repr string) {
	t.Helper()
	p := filepath.Join(root, "main", "base", restoreID, "backup.info")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(strings.Replace(string(b), "tablespaces=None", "tablespaces="+repr, 1)), 0o600)
}

// Of a directory and a link at one path, the later member wins, and the
// directory's mode never goes through the link to where it points.
func TestRestoreDirectoryAndLinkAtOnePath(t *testing.T) {
	outside := t.TempDir()
	os.Chmod(outside, 0o755)
	reg := func(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600} }
	archives := map[string][]tar.Header{
		"data.tar":      {reg("./PG_VERSION"), reg("global/pg_control"), {Typeflag: tar.TypeDir, Name: "pg_wal", Mode: 0o700}, reg("backup_label")},
		"data_0001.tar": {{Typeflag: tar.TypeSymlink, Name: "pg_wal", Linkname: outside}},
	}
	bodies := map[string]string{"data.tar:./PG_VERSION": "15\n", "data.tar:global/pg_control": "c", "data.tar:backup_label": "LABEL: x\n"}
	root := storeArchives(t, archives, bodies)
	dir := t.TempDir()
	if rep, err := restoreFrom(t, root, dir, 2, 0); err != nil {
		t.Fatalf("%v\n%s", err, problems(rep))
	}
	if target, _ := os.Readlink(filepath.Join(dir, "data", "pg_wal")); target != outside {
		t.Errorf("pg_wal -> %q, want the later member, the link to %s", target, outside)
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o755 {
		t.Errorf("the link's target got mode %v: the directory's mode went through the link", fi.Mode().Perm())
	}
}

func TestRestorePlacesTablespacesApart(t *testing.T) {
	src := fixture(t)
	root, _, err := run(t, serverSource{src}, "", 100<<30)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := uploaders.NewFileStore(root)
	r, _ := uploaders.ReaderOf(store)
	restore := func(dir string, rules map[string]string) error {
		_, err := Restore(context.Background(), RestoreOptions{Store: store, Reader: r, Server: "main", Backup: restoreID,
			RecoveryDir: filepath.Join(dir, "data"), Tablespaces: rules})
		return err
	}
	dir := t.TempDir()
	if err := restore(dir, map[string]string{"tbs1": filepath.Join(dir, "data")}); err == nil || !strings.Contains(err.Error(), "where PGDATA goes") {
		t.Errorf("tablespace into RECOVERY_DIR: %v", err)
	}
	// A destination that cannot be made fails before anything is written
	// anywhere, and a failure after writing names every directory left.
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o600)
	err = restore(dir, map[string]string{"tbs1": filepath.Join(dir, "tbs")})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	dir2 := t.TempDir()
	_, err = Restore(context.Background(), RestoreOptions{Store: store, Reader: r, Server: "main", Backup: restoreID,
		RecoveryDir: filepath.Join(blocker, "data"), Tablespaces: map[string]string{"tbs1": filepath.Join(dir2, "tbs")}})
	if err == nil || !strings.Contains(err.Error(), "cannot use the destination") {
		t.Errorf("RECOVERY_DIR under a file: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir2, "tbs")); len(entries) > 0 {
		t.Errorf("the tablespace got %d entries though RECOVERY_DIR could not be made", len(entries))
	}
	flipByte(t, filepath.Join(root, "main", "base", restoreID, "data.tar"), 600<<10)
	dir3 := t.TempDir()
	err = restore(dir3, map[string]string{"tbs1": filepath.Join(dir3, "tbs")})
	var inc *IncompleteError
	if !errors.As(err, &inc) || len(inc.Dirs) == 0 || inc.Dirs[0] != filepath.Join(dir3, "data") {
		t.Errorf("damaged restore: %v, want an IncompleteError naming what it left", err)
	}
}

// An in-place tablespace (allow_in_place_tablespaces) is in the data
// archive: no archive of its own is expected, no link is made.
func TestRestoreInPlaceTablespace(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600} }
	archives := map[string][]tar.Header{"data.tar": {reg("./PG_VERSION"), reg("global/pg_control"),
		reg("pg_tblspc/16445/PG_15_202209061/5/16446"), reg("backup_label")}}
	bodies := map[string]string{"data.tar:./PG_VERSION": "15\n", "data.tar:global/pg_control": "c", "data.tar:backup_label": "LABEL: x\n",
		"data.tar:pg_tblspc/16445/PG_15_202209061/5/16446": "rows"}
	root := storeArchives(t, archives, bodies)
	setTablespaces(t, root, "[('inplace', 16445, 'pg_tblspc/16445')]")
	dir := t.TempDir()
	if rep, err := restoreFrom(t, root, dir, 2, 0); err != nil {
		t.Fatalf("%v\n%s", err, problems(rep))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data", "pg_tblspc/16445/PG_15_202209061/5/16446")); err != nil || string(b) != "rows" {
		t.Errorf("in-place tablespace file: %q, %v", b, err)
	}
}
