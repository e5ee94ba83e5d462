//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

var backupIDPattern = regexp.MustCompile(`^\d{8}T\d{6}$`)

var (
	verifyOnce sync.Once
	verifyBin  string
	verifyErr  error
)

// verifyBinary is our barman-cloud-backup-verify, built once, beside the
// binary under test (TestMain removes that directory).
func verifyBinary(t testing.TB) string {
	t.Helper()
	verifyOnce.Do(func() {
		verifyBin = filepath.Join(filepath.Dir(binary), "barman-cloud-backup-verify")
		if out, err := exec.Command("go", "build", "-o", verifyBin, "../cmd/barman-cloud-backup-verify").CombinedOutput(); err != nil {
			verifyErr = fmt.Errorf("build barman-cloud-backup-verify: %v\n%s", err, out)
		}
	})
	if verifyErr != nil {
		t.Fatal(verifyErr)
	}
	return verifyBin
}

// verify runs barman-cloud-backup-verify on one backup of server in the
// world's destination.
func (w *world) verify(t testing.TB, server, id string, args ...string) result {
	t.Helper()
	full := append(append(append([]string{}, w.cloud...), args...), w.dest, server, id)
	return runCmd(t, w.env, verifyBinary(t), full...)
}

// mustVerify asserts the backup is sound.
func (w *world) mustVerify(t testing.TB, server, id string, args ...string) string {
	t.Helper()
	r := w.verify(t, server, id, args...)
	if backupIDPattern.MatchString(id) && !strings.Contains(r.stdout, "SOUND: backup "+id) {
		r.code = -1
	}
	if r.code != 0 || !strings.Contains(r.stdout, "SOUND: backup ") {
		t.Fatalf("verify %s %s exited %d:\n%s%s", server, id, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// moveConfigOutside moves the cluster's configuration files out of PGDATA,
// as Debian lays them out, and restarts it with config_file pointing
// there; hba_file and ident_file follow.
func (c *Cluster) moveConfigOutside(t *testing.T) string {
	t.Helper()
	etc := postgresDir(t, "bcb-etc-")
	asPostgres(t, nil, c.program("pg_ctl"), "-D", c.Data, "-m", "fast", "-w", "stop")
	for _, f := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"} {
		if err := os.Rename(filepath.Join(c.Data, f), filepath.Join(etc, f)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(etc, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "hba_file = '%s/pg_hba.conf'\nident_file = '%s/pg_ident.conf'\n", etc, etc)
	f.Close()
	chownPostgres(t, etc)
	asPostgres(t, c.env, c.program("pg_ctl"), "-D", c.Data, "-l", filepath.Join(c.Dir, "server.log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-p %d -k %s -c config_file=%s/postgresql.conf", c.Port, c.Dir, etc), "start")
	if got := c.Query(t, "SHOW hba_file"); !strings.HasPrefix(got, etc) {
		t.Fatalf("hba_file is %s, not outside PGDATA", got)
	}
	return etc
}

// writeLoad runs pgbench on the cluster until stop is called, its
// history rows stamped with their WAL position (stampHistory), and returns
// once it has written one.
func writeLoad(t *testing.T, c *Cluster) (stop func()) {
	t.Helper()
	stampHistory(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, pgBin("pgbench"), "-n", "-c", "3", "-j", "1", "-T", "600", "-R", "300",
		"-h", "127.0.0.1", "-p", fmt.Sprint(c.Port), "-U", "postgres", "postgres")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan struct{}), make(chan []byte, 1)
	go func() {
		cmd.Wait()
		exited <- out.Bytes()
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitForHistory(t, c, exited)
	return func() {
		cancel()
		<-done
	}
}

// storedManifest is backup_manifest read out of the backup's gzip data
// parts with Go's gzip and tar readers.
func (w *world) storedManifest(t *testing.T, id string) []byte {
	t.Helper()
	var found []byte
	for _, n := range w.names(t, id) {
		if !strings.HasPrefix(n, "data") {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(w.store.Get(t, w.basePrefix(id)+n)))
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
				t.Fatalf("%s: %v", n, err)
			}
			if h.Name == pg.ManifestName {
				found, _ = io.ReadAll(tr)
			}
		}
	}
	if found == nil {
		t.Fatalf("no backup_manifest in backup %s", id)
	}
	return found
}

// copyBackup copies a backup's objects, server side, under another
// server name, for a test to damage.
func copyBackup(t *testing.T, m *MinIO, bucket, from, to string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range m.Keys(t, bucket, from) {
		_, err := m.Client.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: to + strings.TrimPrefix(k, from)},
			minio.CopySrcOptions{Bucket: bucket, Object: k})
		if err != nil {
			t.Fatalf("copy %s: %v", k, err)
		}
	}
}

func putObject(t *testing.T, m *MinIO, bucket, key string, data []byte) {
	t.Helper()
	if _, err := m.Client.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func removeObject(t *testing.T, m *MinIO, bucket, key string) {
	t.Helper()
	if err := m.Client.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyBackups proves the backups: a backup taken under writes, with
// a tablespace, configuration files outside PGDATA and split archives,
// restored by Barman 3.4's barman-cloud-restore, passes PostgreSQL's own
// pg_verifybackup, which finds a changed byte and a removed file; its
// manifest agrees with pg_basebackup's for the same files;
// barman-cloud-backup-verify passes it on every provider, and finds each
// kind of damage done to a copy.
func TestVerifyBackups(t *testing.T) {
	m := StartMinIO(t, "backups")
	w := &world{store: minioBucket{m, "backups"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://backups/v", prefix: "v", server: "main"}
	w.startSource(t, nil)
	w.src.moveConfigOutside(t)
	port := fmt.Sprint(w.src.Port)
	mustRun(t, nil, pgBin("pgbench"), "-i", "-q", "-s", "1", "--tablespace", "tbs1", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")

	stop := writeLoad(t, w.src)
	id, log := w.backupLog(t, "-z", "-S", "1MB", "-v")
	stop()
	w.checkWrittenDuring(t, id)
	w.src.Archive(t)
	if !strings.Contains(log, "Uploading 'backup_manifest' (") || !strings.Contains(log, "Read back ") {
		t.Errorf("the backup did not log its manifest and read-back:\n%s", log)
	}
	names := w.names(t, id)
	if !contains(names, "data_0002.tar.gz") {
		t.Fatalf("want the data archive split in three parts or more: %v", names)
	}

	t.Run("pg_verifybackup", func(t *testing.T) {
		dir := postgresDir(t, "bcb-restore-")
		data, tbs := filepath.Join(dir, "data"), filepath.Join(dir, "tbs1")
		mustRun(t, w.env, "barman-cloud-restore", append(w.cloud, "--tablespace", "tbs1:"+tbs, w.dest, w.server, id, data)...)
		// Barman's restore places the tablespace at the location given and
		// links it from pg_tblspc/OID; pg_verifybackup follows the link.
		if link, err := os.Readlink(filepath.Join(data, "pg_tblspc", "16384")); err != nil || link != tbs {
			t.Fatalf("pg_tblspc/16384 -> %q (%v), want %s", link, err, tbs)
		}
		for _, f := range []string{"backup_manifest", "postgresql.conf", "pg_hba.conf", "backup_label"} {
			if _, err := os.Stat(filepath.Join(data, f)); err != nil {
				t.Errorf("restored %s: %v", f, err)
			}
		}
		r := runCmd(t, nil, pgBin("pg_verifybackup"), "--no-parse-wal", data)
		if r.code != 0 || !strings.Contains(r.stdout, "backup successfully verified") {
			t.Fatalf("pg_verifybackup exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		// One byte changed in a file of the tablespace, one file removed.
		changed := largestFile(t, tbs)
		b, _ := os.ReadFile(changed)
		b[len(b)/2] ^= 1
		os.WriteFile(changed, b, 0o600)
		removed := filepath.Join(data, "global", "pg_filenode.map")
		if err := os.Remove(removed); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(tbs, changed)
		r = runCmd(t, nil, pgBin("pg_verifybackup"), "--no-parse-wal", data)
		for _, want := range []string{`checksum mismatch for file "pg_tblspc/16384/` + rel + `"`,
			`"global/pg_filenode.map" is present in the manifest but not on disk`} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("pg_verifybackup exited %d without %q:\n%s", r.code, want, r.stderr)
			}
		}
	})

	t.Run("sound", func(t *testing.T) {
		out := w.mustVerify(t, w.server, id, "--check-wal", "-J", "3")
		t.Logf("%s", out)
		m := regexp.MustCompile(`(\d+) of (\d+) files of backup_manifest checked, [1-9]\d* WAL segments? archived`).FindStringSubmatch(out)
		if m == nil || m[1] != m[2] {
			t.Errorf("summary:\n%s", out)
		}
		r := w.verify(t, w.server, "latest", "--json")
		var rep struct {
			Sound        bool   `json:"sound"`
			BackupID     string `json:"backup_id"`
			Manifest     string `json:"manifest"`
			FilesChecked int    `json:"files_checked"`
			Files        int    `json:"files"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || !rep.Sound || rep.BackupID != id ||
			rep.Manifest != "checked" || rep.FilesChecked < 900 || rep.FilesChecked != rep.Files {
			t.Errorf("--json: exit %d, %v, %+v\n%s", r.code, err, rep, r.stderr)
		}
	})

	t.Run("same-files-as-pg_basebackup", func(t *testing.T) {
		w.src.Exec(t, "CHECKPOINT")
		ours := w.backup(t, "-z")
		dir := postgresDir(t, "bcb-basebackup-")
		asPostgres(t, nil, pgBin("pg_basebackup"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-D", filepath.Join(dir, "data"),
			"-X", "none", "-c", "fast", "-T", w.tbsDir+"="+filepath.Join(dir, "tbs"))
		theirs, err := os.ReadFile(filepath.Join(dir, "data", "backup_manifest"))
		if err != nil {
			t.Fatal(err)
		}
		compareManifests(t, w.storedManifest(t, ours), theirs)
	})

	t.Run("damage", func(t *testing.T) {
		// A second backup after more writes, whose objects are "another
		// backup's" below.
		w.change(t, 1)
		other := w.backup(t, "-z", "-S", "1MB")
		damaged := func(t *testing.T, server string) string {
			copyBackup(t, m, "backups", w.basePrefix(id), "v/"+server+"/base/"+id+"/")
			return "v/" + server + "/base/" + id + "/"
		}
		for _, c := range []struct {
			name   string
			damage func(t *testing.T, pfx string)
			args   []string
			want   string
		}{
			{"flipped-byte", func(t *testing.T, pfx string) {
				b := m.Get(t, "backups", pfx+"data_0001.tar.gz")
				b[len(b)/2] ^= 0x10
				putObject(t, m, "backups", pfx+"data_0001.tar.gz", b)
			}, nil, "data_0001.tar.gz: corrupt"},
			{"truncated", func(t *testing.T, pfx string) {
				b := m.Get(t, "backups", pfx+"16384.tar.gz")
				putObject(t, m, "backups", pfx+"16384.tar.gz", b[:len(b)*2/3])
			}, nil, "16384.tar.gz: truncated"},
			{"missing-split-part", func(t *testing.T, pfx string) {
				removeObject(t, m, "backups", pfx+"data_0001.tar.gz")
			}, nil, "data_0001.tar: missing: volume 1 of the archive of PGDATA"},
			{"missing-tablespace", func(t *testing.T, pfx string) {
				for _, k := range m.Keys(t, "backups", pfx+"16384") {
					removeObject(t, m, "backups", k)
				}
			}, nil, "16384.tar: missing: no first volume of the archive of tablespace tbs1"},
			{"object-of-another-backup", func(t *testing.T, pfx string) {
				for _, k := range m.Keys(t, "backups", pfx+"16384") {
					removeObject(t, m, "backups", k)
				}
				for _, n := range w.names(t, other) {
					if strings.HasPrefix(n, "16384") {
						putObject(t, m, "backups", pfx+n, w.store.Get(t, w.basePrefix(other)+n))
					}
				}
			}, nil, "files differ from backup_manifest: damaged, or an object of another backup"},
			{"missing-wal", func(t *testing.T, pfx string) {
				// The backup's segments but its last.
				server := strings.Split(pfx, "/")[1]
				info := w.store.Get(t, pfx+"backup.info")
				begin, end := infoValue(info, "begin_wal"), infoValue(info, "end_wal")
				for _, dir := range []string{begin[:16], end[:16]} {
					for _, k := range m.Keys(t, "backups", "v/main/wals/"+dir+"/") {
						if name := filepath.Base(k)[:24]; name >= begin && name < end {
							copyBackup(t, m, "backups", k, "v/"+server+"/wals/"+dir+"/"+filepath.Base(k))
						}
					}
				}
			}, []string{"--check-wal"}, "wals/" + "%END%" + ": missing from the WAL archive"},
		} {
			t.Run(c.name, func(t *testing.T) {
				server := "dmg-" + c.name
				c.damage(t, damaged(t, server))
				if end := infoValue(w.store.Get(t, w.basePrefix(id)+"backup.info"), "end_wal"); end != "" {
					c.want = strings.Replace(c.want, "%END%", end[:16]+"/"+end, 1)
				}
				r := w.verify(t, server, id, c.args...)
				if r.code != 1 || !strings.Contains(r.stdout, c.want) || !strings.Contains(r.stdout, "DAMAGED (") {
					t.Errorf("exit %d, want 1 with %q:\n%s%s", r.code, c.want, r.stdout, r.stderr)
				}
				t.Logf("%s", r.stdout)
			})
		}
		w.mustVerify(t, w.server, other)
	})

	t.Run("barman-own-backup", func(t *testing.T) {
		// Barman writes no manifest: every check but the checksums.
		waitNextSecond()
		mustRun(t, w.env, "barman-cloud-backup", append(w.cloud, "-h", "127.0.0.1", "-p", port, "-U", "postgres",
			"--immediate-checkpoint", w.dest, "by-barman")...)
		out := w.mustVerify(t, "by-barman", "latest")
		if !strings.Contains(out, "note: no backup_manifest in the data archive") || !strings.Contains(out, "backup_manifest absent") {
			t.Errorf("no word about the missing manifest:\n%s", out)
		}
		// Our restore restores Barman 3.4's backup, warning it cannot
		// check the files, and the cluster starts.
		bw := *w
		bw.server = "by-barman"
		ours, s := bw.restoreWithOurs(t, "latest")
		if s.Verified != "absent" {
			t.Errorf("our restore of Barman's backup: %+v", s)
		}
		w.change(t, 2)
		// The WAL is the source's, archived under its server name.
		w.checkRestored(t, w.startRestored(t, ours))
	})

	t.Run("providers", func(t *testing.T) {
		a := StartAzurite(t, "backups")
		g := StartFakeGCS(t, "backups")
		root := t.TempDir()
		for _, p := range []struct {
			name string
			w    *world
			args []string
		}{
			{"azure", &world{store: a.Container(t, "backups"), env: append(append([]string{}, w.env...), a.Env()...),
				cloud: []string{"--cloud-provider", "azure-blob-storage"}, dest: a.Endpoint + "/backups/v", prefix: "v"}, []string{"--snappy", "-S", "4MB"}},
			{"gcs", &world{store: g.Bucket("backups"), env: append(append([]string{}, w.env...), g.Env()...),
				cloud: []string{"--cloud-provider", "google-cloud-storage"}, dest: "gs://backups/v", prefix: "v"}, []string{"--zstd"}},
			{"file", &world{store: dirStore(root), env: w.env, dest: "file://" + root}, []string{"--lz4", "-S", "8MB"}},
			{"s3-uncompressed", &world{store: w.store, env: w.env, cloud: w.cloud, dest: w.dest, prefix: w.prefix}, nil},
		} {
			t.Run(p.name, func(t *testing.T) {
				p.w.server, p.w.src = "prov-"+p.name, w.src
				id := p.w.backupTo(t, p.args...)
				out := p.w.mustVerify(t, p.w.server, id, "-J", "4")
				if !strings.Contains(out, "files of backup_manifest checked") {
					t.Errorf("output:\n%s", out)
				}
			})
		}
	})
}

// dirStore reads a file:// destination, as an objectStore. Its prefix is
// empty, which the world's key helpers spell as a leading "/": keys keep
// it.
type dirStore string

func (d dirStore) Keys(t testing.TB, prefix string) []string {
	var keys []string
	lead := ""
	if strings.HasPrefix(prefix, "/") {
		lead, prefix = "/", prefix[1:]
	}
	filepath.Walk(string(d), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(string(d), p)
			if k := filepath.ToSlash(rel); strings.HasPrefix(k, prefix) {
				keys = append(keys, lead+k)
			}
		}
		return nil
	})
	sort.Strings(keys)
	return keys
}

func (d dirStore) Get(t testing.TB, key string) []byte {
	b, err := os.ReadFile(filepath.Join(string(d), strings.TrimPrefix(key, "/")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func largestFile(t *testing.T, dir string) string {
	t.Helper()
	var best string
	var size int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			best, size = p, fi.Size()
		}
		return nil
	})
	if best == "" {
		t.Fatalf("no file under %s", dir)
	}
	return best
}

// compareManifests checks our manifest against pg_basebackup's for the
// same cluster, taken one after the other on a quiet server: the same
// header and line format, the same files but for the configuration files
// we add from outside PGDATA, and for every file unchanged between the two
// (same size and modification time) the same line, checksum included.
func compareManifests(t *testing.T, ours, theirs []byte) {
	t.Helper()
	om, err := pg.ParseManifest(ours)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := pg.ParseManifest(theirs)
	if err != nil {
		t.Fatal(err)
	}
	firstLines := func(b []byte) string { return strings.Join(strings.SplitN(string(b), "\n", 3)[:2], "\n") }
	if firstLines(ours) != firstLines(theirs) {
		t.Errorf("header:\n%s\npg_basebackup's:\n%s", firstLines(ours), firstLines(theirs))
	}
	lines := func(b []byte) map[string]string {
		out := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if m := regexp.MustCompile(`^\{ "Path": "([^"]+)", `).FindStringSubmatch(l); m != nil {
				out[m[1]] = strings.TrimSuffix(l, ",")
			}
		}
		return out
	}
	ol, tl := lines(ours), lines(theirs)
	ourFiles := map[string]pg.ManifestFile{}
	for _, f := range om.Files {
		ourFiles[f.Path] = f
	}
	same := 0
	for _, f := range tm.Files {
		o, ok := ourFiles[f.Path]
		switch {
		case !ok:
			t.Errorf("%s is in pg_basebackup's manifest, not in ours", f.Path)
		case f.Path == "backup_label":
		case o.Size == f.Size && o.LastModified == f.LastModified:
			same++
			if ol[f.Path] != tl[f.Path] {
				t.Errorf("an unchanged file's line differs:\n%s\npg_basebackup's:\n%s", ol[f.Path], tl[f.Path])
			}
		}
		delete(ourFiles, f.Path)
	}
	var extra []string
	for p := range ourFiles {
		extra = append(extra, p)
	}
	sort.Strings(extra)
	if strings.Join(extra, " ") != "pg_hba.conf pg_ident.conf postgresql.conf" {
		t.Errorf("files only in our manifest: %v, want the configuration files from outside PGDATA", extra)
	}
	if same < len(tm.Files)/2 {
		t.Errorf("only %d of %d files compared: the server was not quiet", same, len(tm.Files))
	}
	walRange := regexp.MustCompile(`"WAL-Ranges": \[\n\{ "Timeline": 1, "Start-LSN": "[0-9A-F]+/[0-9A-F]+", "End-LSN": "[0-9A-F]+/[0-9A-F]+" \}\n\],\n"Manifest-Checksum": "[0-9a-f]{64}"\}\n$`)
	for name, b := range map[string][]byte{"ours": ours, "pg_basebackup's": theirs} {
		if !walRange.Match(b) {
			t.Errorf("%s manifest's end:\n%s", name, b[max(0, len(b)-300):])
		}
	}
	t.Logf("%d files in pg_basebackup's manifest, %d unchanged between the two and identical", len(tm.Files), same)
}

// checkRestoredManifest restores a backup of a major with Barman 3.4's
// barman-cloud-restore and checks it with Debian's pg_verifybackup 15,
// the only one installed: it reads version 1 manifests (PostgreSQL 13 to
// 16 write those) and refuses version 2, which 17 and later write, with
// "unexpected manifest version". barman-cloud-backup-verify checks the
// stored backup of every major. It returns the directory of Barman's
// restore (data/, tbs1/), which pg_verifybackup left as it was.
func checkRestoredManifest(t *testing.T, w *world, id string, major int) string {
	t.Helper()
	defer func(start time.Time) {
		t.Logf("PostgreSQL %d's manifest checked in %.1fs", major, time.Since(start).Seconds())
	}(time.Now())
	w.mustVerify(t, w.server, id)
	dir := postgresDir(t, "bcb-verifybackup-")
	data := filepath.Join(dir, "data")
	mustRun(t, w.env, "barman-cloud-restore", append(w.cloud, "--tablespace", "tbs1:"+filepath.Join(dir, "tbs1"),
		w.dest, w.server, id, data)...)
	r := runCmd(t, nil, pgBin("pg_verifybackup"), "--no-parse-wal", data)
	if major < 17 {
		if r.code != 0 || !strings.Contains(r.stdout, "backup successfully verified") {
			t.Errorf("pg_verifybackup 15 on PostgreSQL %d's backup exited %d:\n%s%s", major, r.code, r.stdout, r.stderr)
		}
		return dir
	}
	if r.code != 1 || !strings.Contains(r.stderr, "unexpected manifest version") {
		t.Errorf("pg_verifybackup 15 on a version 2 manifest (PostgreSQL %d) exited %d:\n%s%s", major, r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(data, pg.ManifestName))
	if err != nil || !bytes.HasPrefix(b, []byte("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": ")) {
		t.Errorf("PostgreSQL %d's manifest: %v\n%.200s", major, err, b)
	}
	return dir
}

// checkHookManifests verifies what a Barman hook uploaded: the backup
// pg_basebackup made for Barman holds its own backup_manifest, which is
// kept and checks; one without (an rsync backup) gets ours.
func checkHookManifests(t *testing.T, w *world, server, id, dir string, hookEnv func(id string) []string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "data", pg.ManifestName)); err != nil {
		t.Fatalf("Barman's backup_method = postgres keeps pg_basebackup's manifest in data/: %v", err)
	}
	out := w.mustVerify(t, server, id)
	if !strings.Contains(out, "files of backup_manifest checked") {
		t.Errorf("Barman's manifest was not checked:\n%s", out)
	}
	t.Run("without-manifest", func(t *testing.T) {
		copied := filepath.Join(postgresDir(t, "bcb-barman-copy-"), id)
		if out, err := exec.Command("cp", "-a", dir, copied).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		os.Remove(filepath.Join(copied, "data", pg.ManifestName))
		const other = "20200303T000000"
		env := append(hookEnv(other), "BARMAN_BACKUP_DIR="+copied)
		if r := runCmd(t, env, binary, append(append([]string{}, w.cloud...), "-z", w.dest, server)...); r.code != 0 {
			t.Fatalf("hook exited %d:\n%s", r.code, r.stderr)
		}
		out := w.mustVerify(t, server, other)
		if !strings.Contains(out, "files of backup_manifest checked") {
			t.Errorf("no manifest written for a Barman backup without one:\n%s", out)
		}
	})
}
