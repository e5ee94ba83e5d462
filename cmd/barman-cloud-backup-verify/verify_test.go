package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// verifySource serves a directory laid out as PGDATA and a tablespace, with
// the WAL range a live server reports; walRange false leaves it out, as
// for a backup without a manifest.
type verifySource struct {
	pgdata, tbs string
	walRange    bool
	label       string
}

func (s *verifySource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	info.PGData, info.Status = s.pgdata, pg.StatusStarted
	info.Tablespaces = []pg.Tablespace{{Name: "tbs1", OID: 16384, Location: s.tbs}}
	info.Version, info.SystemID, info.XLOGSegmentSize = pg.Int64(150004), "7711737989575920341", pg.Int64(16<<20)
	if s.walRange {
		info.BeginXLOG, info.Timeline = "0/2C000028", pg.Int64(1)
		info.BeginWAL, info.BeginOffset = "00000001000000000000002C", pg.Int64(40)
	}
	return &pg.Layout{PGData: s.pgdata, MajorVersion: "15", Tablespaces: info.Tablespaces}, nil
}

func (s *verifySource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	if s.walRange {
		info.EndXLOG, info.EndWAL = "0/2D000138", "00000001000000000000002D"
	}
	info.BackupLabel = &s.label
	return []byte(s.label), nil
}

func (s *verifySource) Abort(ctx context.Context) {}

func writeFile(t *testing.T, path string, size int, seed int64) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, size)
	for i := range b {
		b[i] = "postgres-page-"[r.Intn(14)]
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newVerifySource(t *testing.T, seed int64) *verifySource {
	dir := t.TempDir()
	s := &verifySource{pgdata: filepath.Join(dir, "data"), tbs: filepath.Join(dir, "tbs"), walRange: true,
		label: fmt.Sprintf("START WAL LOCATION: 0/2C000028 (file 00000001000000000000002C)\nLABEL: test %d\n", seed)}
	writeFile(t, filepath.Join(s.pgdata, "PG_VERSION"), 3, 1)
	writeFile(t, filepath.Join(s.pgdata, "global", "pg_control"), 8192, 2)
	for i := range 6 {
		writeFile(t, filepath.Join(s.pgdata, "base", "5", fmt.Sprint(16000+i)), 300<<10, seed+int64(i))
	}
	os.MkdirAll(filepath.Join(s.pgdata, "pg_wal", "archive_status"), 0o700)
	os.MkdirAll(filepath.Join(s.pgdata, "pg_tblspc"), 0o700)
	for i := range 3 {
		writeFile(t, filepath.Join(s.tbs, "PG_15_202209061", "5", fmt.Sprint(16500+i)), 200<<10, seed+10+int64(i))
	}
	return s
}

// backup takes a backup of src into the file store at root.
func backup(t *testing.T, root, id string, src *verifySource, codec string, maxSize int64) {
	t.Helper()
	store, _ := uploaders.NewFileStore(root)
	c, err := tarball.CodecByName(codec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := actors.Run(context.Background(), src, actors.Options{
		Store: store, ServerName: "main", BackupID: id, BackupName: "name-" + id, Codec: c,
		MaxArchiveSize: maxSize, Jobs: 2, BlockSize: 64 << 10,
	}); err != nil {
		t.Fatal(err)
	}
}

func verifyIn(t *testing.T, root, backup string, checkWAL bool) *actors.RestoreReport {
	t.Helper()
	store, _ := uploaders.NewFileStore(root)
	r, _ := uploaders.ReaderOf(store)
	rep, err := verifyBackup(context.Background(), Options{Store: store, Reader: r, Server: "main", Backup: backup,
		Jobs: 3, CheckWAL: checkWAL, ChunkSize: 100 << 10})
	if err != nil {
		t.Fatalf("verify %s: %v", backup, err)
	}
	return rep
}

func problems(rep *actors.RestoreReport) string {
	var lines []string
	for _, p := range rep.Problems {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

const id1, id2 = "20261124T120000", "20261124T130000"

func folder(root, id string) string { return filepath.Join(root, "main", "base", id) }

func TestEveryCodecVerifies(t *testing.T) {
	for _, codec := range []string{"", "gz", "bz2", "snappy", "lz4", "zstd"} {
		t.Run("codec="+codec, func(t *testing.T) {
			root := t.TempDir()
			backup(t, root, id1, newVerifySource(t, 1), codec, 512<<10)
			rep := verifyIn(t, root, id1, false)
			if !rep.Sound || rep.Manifest != "checked" || rep.FilesChecked != 12 || rep.Files != 12 || rep.BackupStatus != "DONE" {
				t.Fatalf("report %+v\n%s", rep, problems(rep))
			}
			if len(rep.Objects) < 3 {
				t.Errorf("objects %+v: want data split in volumes", rep.Objects)
			}
			for _, o := range rep.Objects {
				if !o.OK || o.Members == 0 || o.TarBytes == 0 {
					t.Errorf("object %+v", o)
				}
			}
			if notes := strings.Join(rep.Notes, "\n"); (codec == "lz4" || codec == "zstd") != strings.Contains(notes, "cannot restore") {
				t.Errorf("notes %q", notes)
			}
		})
	}
}

// damageCase changes one stored backup and names the problem line it must
// cause.
type damageCase struct {
	name   string
	damage func(t *testing.T, dir string)
	want   []string
}

// flip changes 16 bytes from at(size) on. One flipped bit may land where
// no reader looks (a gzip member's MTIME, the padding bits after a deflate
// stream), leaving the backup sound; 16 bytes in a row cannot.
func flip(t *testing.T, path string, at func(n int) int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := at(len(b)); i < at(len(b))+16; i++ {
		b[i] ^= 0x20
	}
	os.WriteFile(path, b, 0o600)
}

func TestDamageIsReported(t *testing.T) {
	cases := []damageCase{
		{"flipped-byte", func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, "data.tar.gz"), func(n int) int { return n / 2 })
		}, []string{"data.tar.gz: corrupt"}},
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "16384.tar.gz")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()*2/3)
		}, []string{"16384.tar.gz: truncated", "files of backup_manifest were not checked"}},
		{"missing-split-volume", func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, "data_0002.tar.gz")); err != nil {
				t.Fatalf("data is not split in three volumes or more: %v", err)
			}
			os.Remove(filepath.Join(dir, "data_0001.tar.gz"))
		}, []string{"data_0001.tar: missing: volume 1 of the archive of PGDATA", "files of backup_manifest were not checked"}},
		{"missing-last-volume", func(t *testing.T, dir string) {
			last := ""
			for i := range 20 {
				if n := tarball.VolumeName("data", i, ".gz"); fileExists(filepath.Join(dir, n)) {
					last = n
				}
			}
			os.Remove(filepath.Join(dir, last))
		}, []string{"data: backup_label: missing from the data archive, whose last member it is"}},
		{"missing-tablespace", func(t *testing.T, dir string) {
			for i := range 50 {
				os.Remove(filepath.Join(dir, tarball.VolumeName("16384", i, ".gz")))
			}
		}, []string{"16384.tar: missing: no first volume of the archive of tablespace tbs1", "16384: 3 files of backup_manifest were not checked"}},
		{"tablespace-of-another-backup", func(t *testing.T, dir string) {
			replaceArchive(t, dir, "16384")
		}, []string{"pg_tblspc/16384/PG_15_202209061/5/16500: checksum mismatch", "files differ from backup_manifest: damaged, or an object of another backup"}},
		{"data-of-another-backup", func(t *testing.T, dir string) {
			replaceArchive(t, dir, "data")
		}, []string{"data: backup_label: differs from backup.info's backup_label", "checksum mismatch"}},
		{"not-done", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "backup.info")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "status=DONE", "status=FAILED", 1)), 0o600)
		}, []string{"backup.info: status is FAILED, not DONE"}},
		{"stray-object", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "data.tar.xz"), []byte("x"), 0o600)
			os.WriteFile(filepath.Join(dir, "16385.tar"), []byte("x"), 0o600)
		}, []string{`data.tar.xz: unknown extension ".xz"`, "16385.tar: not a volume of any archive backup.info lists"}},
		{"trailing-garbage", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, "16384.tar.gz"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("garbage"))
			f.Close()
		}, []string{"16384.tar.gz: 7 bytes after the end of the compressed stream"}},
		{"backup-info-missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "backup.info"))
		}, []string{"backup.info: missing"}},
	}
	// Two backups, taken once; each case damages a copy.
	template := t.TempDir()
	backup(t, template, id1, newVerifySource(t, 1), "gz", 128<<10)
	backup(t, template, id2, newVerifySource(t, 2), "gz", 128<<10)
	if rep := verifyIn(t, template, id1, false); !rep.Sound {
		t.Fatalf("before the damage:\n%s", problems(rep))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(template)); err != nil {
				t.Fatal(err)
			}
			c.damage(t, folder(root, id1))
			rep := verifyIn(t, root, id1, false)
			got := problems(rep)
			if rep.Sound {
				t.Fatalf("damage not found; report %+v", rep)
			}
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					t.Errorf("no line with %q in:\n%s", want, got)
				}
			}
			t.Logf("%s:\n%s", c.name, got)
			if rep := verifyIn(t, root, id2, false); !rep.Sound {
				t.Errorf("the other backup:\n%s", problems(rep))
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(to, b, 0o600)
}

func TestWithoutManifestTheRestIsChecked(t *testing.T) {
	root := t.TempDir()
	src := newVerifySource(t, 1)
	src.walRange = false
	backup(t, root, id1, src, "bz2", 100<<30)
	rep := verifyIn(t, root, id1, false)
	if !rep.Sound || rep.Manifest != "absent" || !strings.Contains(strings.Join(rep.Notes, " "), "not checked against backup_manifest's checksums") {
		t.Fatalf("report %+v\n%s", rep, problems(rep))
	}
	// pg_control lost: found even without a manifest.
	dir := folder(root, id1)
	raw, _ := os.ReadFile(filepath.Join(dir, "data.tar.bz2"))
	os.WriteFile(filepath.Join(dir, "data.tar.bz2"), raw[:len(raw)/3], 0o600)
	if rep := verifyIn(t, root, id1, false); rep.Sound || !strings.Contains(problems(rep), "data.tar.bz2: truncated") {
		t.Errorf("a cut archive without a manifest:\n%s", problems(rep))
	}
}

func TestCheckWAL(t *testing.T) {
	root := t.TempDir()
	backup(t, root, id1, newVerifySource(t, 1), "gz", 100<<30)
	store, _ := uploaders.NewFileStore(root)
	for _, n := range []string{"00000001000000000000002C.gz", "00000001000000000000002D"} {
		store.Put(context.Background(), "main/wals/0000000100000000/"+n, []byte("wal"))
	}
	rep := verifyIn(t, root, id1, true)
	if !rep.Sound || !rep.WALChecked || rep.WALSegments != 2 {
		t.Fatalf("report %+v\n%s", rep, problems(rep))
	}
	store.Delete(context.Background(), "main/wals/0000000100000000/00000001000000000000002D")
	rep = verifyIn(t, root, id1, true)
	if got := problems(rep); rep.Sound || !strings.Contains(got, "wals/0000000100000000/00000001000000000000002D: missing from the WAL archive") {
		t.Errorf("missing segment:\n%s", got)
	}
}

func TestSegmentsAcrossLogs(t *testing.T) {
	begin, _ := parseSegment("0000000200000003000000FE")
	if begin.name() != "0000000200000003000000FE" || begin.dir() != "0000000200000003" {
		t.Fatal(begin)
	}
	rep := &actors.RestoreReport{}
	info := &pg.InfoFile{BeginWAL: "0000000200000003000000FE", EndWAL: "000000020000000400000001", SegmentSize: 16 << 20}
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	for _, n := range []string{"0000000200000003/0000000200000003000000FE", "0000000200000003/0000000200000003000000FF.zst",
		"0000000200000004/000000020000000400000000", "0000000200000004/000000020000000400000001.lz4", "00000002.history"} {
		store.Put(context.Background(), "wals/"+n, nil)
	}
	if err := checkWAL(context.Background(), store, "wals/", info, rep); err != nil {
		t.Fatal(err)
	}
	if rep.WALSegments != 4 || len(rep.Problems) != 0 {
		t.Errorf("segments %d, problems %v", rep.WALSegments, rep.Problems)
	}
	store.Delete(context.Background(), "wals/00000002.history")
	checkWAL(context.Background(), store, "wals/", info, rep)
	if len(rep.Problems) != 1 || rep.Problems[0].Path != "wals/00000002.history" {
		t.Errorf("problems %v", rep.Problems)
	}
}

func TestBackupNamesAndWords(t *testing.T) {
	root := t.TempDir()
	backup(t, root, id1, newVerifySource(t, 1), "", 100<<30)
	backup(t, root, id2, newVerifySource(t, 2), "", 100<<30)
	store, _ := uploaders.NewFileStore(root)
	for word, want := range map[string]string{"latest": id2, "last": id2, "oldest": id1, "first": id1, "name-" + id1: id1} {
		r, _ := uploaders.ReaderOf(store)
		rep, err := verifyBackup(context.Background(), Options{Store: store, Reader: r, Server: "main", Backup: word})
		if err != nil || rep.BackupID != want {
			t.Errorf("%s: %v, %v; want %s", word, rep, err, want)
		}
	}
	r, _ := uploaders.ReaderOf(store)
	for _, missing := range []string{"nosuchname", "20200101T000000"} {
		if _, err := verifyBackup(context.Background(), Options{Store: store, Reader: r, Server: "main", Backup: missing}); err == nil {
			t.Errorf("%s: no error", missing)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// replaceArchive puts the volumes of archive from the other backup (id2)
// in place of those of the backup in dir.
func replaceArchive(t *testing.T, dir, archive string) {
	t.Helper()
	other := filepath.Join(filepath.Dir(dir), id2)
	for i := range 50 {
		n := tarball.VolumeName(archive, i, ".gz")
		os.Remove(filepath.Join(dir, n))
		if fileExists(filepath.Join(other, n)) {
			copyFile(t, filepath.Join(other, n), filepath.Join(dir, n))
		}
	}
}

// A Barman backup of a server restored from a pg_basebackup holds that
// older backup's manifest, copied from PGDATA: not damage, and not a
// manifest to check the files against.
func TestStaleManifestFromPGDATA(t *testing.T) {
	root := t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	label := "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nLABEL: Barman backup cloud 20261124T120000\n"
	old := pg.NewManifestBuilder()
	old.Add("PG_VERSION", 3, time.Unix(0, 0), 12345)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"./PG_VERSION", "15\n"}, {"global/pg_control", strings.Repeat("c", 8192)},
		{"./backup_manifest", string(old.Bytes(1, 0, []pg.WALRange{{Timeline: 1, Start: 0x3000028, End: 0x3000100}}))},
		{"backup_label", label},
	} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.body)), Mode: 0o600, Format: tar.FormatPAX})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	store.Put(context.Background(), "main/base/"+id1+"/data.tar", buf.Bytes())
	info := "backup_label=" + pg.PyRepr(label) + "\nbegin_xlog=0/5000028\nend_xlog=0/5000100\nstatus=DONE\ntimeline=1\nversion=150004\n"
	store.Put(context.Background(), "main/base/"+id1+"/backup.info", []byte(info))
	rep := verifyIn(t, root, id1, false)
	if !rep.Sound || rep.Manifest != "stale" || !strings.Contains(strings.Join(rep.Notes, " "), "is an older backup's") {
		t.Fatalf("report %+v\n%s", rep, problems(rep))
	}
	// Another backup_label: that is another backup's data archive.
	store.Put(context.Background(), "main/base/"+id1+"/backup.info", []byte(strings.Replace(info, "0/5000028 (", "0/4000028 (", 1)))
	if rep := verifyIn(t, root, id1, false); rep.Sound || !strings.Contains(problems(rep), "differs from backup.info's backup_label") {
		t.Errorf("another backup's data archive:\n%s", problems(rep))
	}
}

// A stored backup whose global/pg_control says the cluster had data
// checksums has every relation file's pages checked, whoever took it:
// here one whose copy did not check them (as Barman's, or ours before
// the check). With checksums off in pg_control, nothing is judged.
func TestPageChecksumsOfStoredBackup(t *testing.T) {
	heap, err := os.ReadFile("../../pg/testdata/heap-pg15.pages")
	if err != nil {
		t.Fatal(err)
	}
	// Blocks 3 to 5 hold the pages of blocks 0 to 2, whose checksums are
	// for those blocks: they fail, as blocks 0 and 2 with a bit flipped.
	damaged := append(append([]byte(nil), heap...), heap...)
	damaged[5000] ^= 1
	damaged[2*8192+5000] ^= 1
	for _, c := range []struct {
		control  string
		state    string
		problems string
	}{
		{"pg_control.pg13-checksums-on", "checked", "data.tar.gz: base/5/16600: checksum verification failed in block 0: calculated "},
		{"pg_control.pg15-checksums-off", "off", ""},
	} {
		t.Run(c.state, func(t *testing.T) {
			root := t.TempDir()
			src := newVerifySource(t, 1)
			copyFile(t, filepath.Join("../../pg/testdata", c.control), filepath.Join(src.pgdata, "global", "pg_control"))
			// 16700 is unlogged: only its init fork is judged, as the
			// copy judges it and a restore keeps it.
			for name, b := range map[string][]byte{"16600": damaged, "16700": damaged, "16700_init": heap[:8192]} {
				if err := os.WriteFile(filepath.Join(src.pgdata, "base", "5", name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			backup(t, root, id1, src, "gz", 1<<30)
			rep := verifyIn(t, root, id1, false)
			if rep.PageChecksums != c.state {
				t.Errorf("page checksums %q, want %q", rep.PageChecksums, c.state)
			}
			if c.problems == "" {
				if len(rep.Problems) != 0 || !rep.Sound || rep.PagesChecked != 0 {
					t.Errorf("checksums off: %d pages checked, problems:\n%s", rep.PagesChecked, problems(rep))
				}
				return
			}
			got := problems(rep)
			if len(rep.Problems) != 1 || !strings.HasPrefix(got, c.problems) || rep.Sound ||
				!strings.HasSuffix(got, "; the file has a total of 5 checksum verification failures, in blocks 0, 2, 3, 4, 5") {
				t.Errorf("problems:\n%s", got)
			}
			if rep.PagesChecked != 7 || rep.PageFailures != 5 {
				t.Errorf("%d pages checked, %d failed; want 7, 5", rep.PagesChecked, rep.PageFailures)
			}
		})
	}
}
