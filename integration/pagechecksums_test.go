//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// corruptPage flips one byte, at offset within block, of the relation
// file at rel (relative to PGDATA, as pg_relation_filepath gives it) while
// the server is stopped, behind PostgreSQL's back; the server is started
// again and never reads the page.
func corruptPages(t *testing.T, c *Cluster, damage map[string][]int) {
	t.Helper()
	c.Stop(t)
	for rel, blocks := range damage {
		path := filepath.Join(c.Data, rel)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range blocks {
			b := make([]byte, 1)
			at := int64(block)*8192 + 6000
			if _, err := f.ReadAt(b, at); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x5a
			if _, err := f.WriteAt(b, at); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	c.start(t)
}

// summaryPages is --json-summary's page_checksums.
type summaryPages struct {
	State        string `json:"state"`
	PagesChecked int64  `json:"pages_checked"`
	FailedPages  int64  `json:"failed_pages"`
	FailedFiles  int64  `json:"failed_files"`
}

func readSummaryPages(t *testing.T, path string) *summaryPages {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Pages *summaryPages `json:"page_checksums"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Pages == nil {
		t.Fatalf("summary %s: %v\n%s", path, err, b)
	}
	return s.Pages
}

// newBackupInfo is the backup.info of the one backup under the world's
// server that was not in before.
func (w *world) newBackupInfo(t *testing.T, before []string) []byte {
	t.Helper()
	for _, k := range w.store.Keys(t, w.prefix+"/"+w.server+"/base/") {
		if strings.HasSuffix(k, "/backup.info") && !slices.Contains(before, k) {
			return w.store.Get(t, k)
		}
	}
	t.Fatalf("no new backup.info under %s/%s/base/", w.prefix, w.server)
	return nil
}

// A cluster with data checksums whose pages were damaged on disk:
// the backup names each damaged file and block, in pg_basebackup's words
// and with the checksums PostgreSQL's own pg_checksums computes, counts
// them in its summaries, and completes; with --page-checksums fail (flag,
// environment, TOML) it fails with backup.info FAILED naming the first
// file; the verifier finds the same pages in the stored backup, in ours
// and in Barman's; with --page-checksums off nothing is checked.
func TestPageChecksums(t *testing.T) {
	for _, major := range []int{15, 18} {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) { pageChecksumRun(t, major) })
	}
	t.Run("no-checksums", func(t *testing.T) {
		m := StartMinIO(t, "pages")
		w := &world{store: minioBucket{m, "pages"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
			dest: "s3://pages/off", prefix: "off", server: "main"}
		w.startSource(t, nil)
		summary := filepath.Join(t.TempDir(), "summary.json")
		id, log := w.backupLog(t, "-v", "--json-summary", summary)
		if s := readSummaryPages(t, summary); s.State != "off" || s.PagesChecked != 0 {
			t.Errorf("page_checksums of a cluster without them: %+v", s)
		}
		if !strings.Contains(log, "page checksums: off in this cluster, not checked") || strings.Contains(log, "checksum verification failed") {
			t.Errorf("the log of a backup of a cluster without checksums:\n%s", tail(log, 10))
		}
		out := w.mustVerify(t, w.server, id)
		if !strings.Contains(out, "note: data page checksums were off in the backup's cluster") {
			t.Errorf("the verifier says nothing of the checksums being off:\n%s", out)
		}
	})
}

func pageChecksumRun(t *testing.T, major int) {
	m := StartMinIO(t, "pages")
	w := &world{store: minioBucket{m, "pages"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://pages/pg", prefix: "pg", server: "main", initdb: []string{"--data-checksums"}}
	if major != 15 {
		w.bin = PGBin(t, major)
	}
	// No autovacuum: nothing reads the damaged pages.
	w.startSource(t, map[string]string{"autovacuum": "off"})
	items := w.src.Query(t, "SELECT pg_relation_filepath('items')")
	numbers := w.src.Query(t, "SELECT pg_relation_filepath('numbers')")
	if w.src.Query(t, "SHOW data_checksums") != "on" || !strings.HasPrefix(numbers, "pg_tblspc/") {
		t.Fatalf("data_checksums %s, numbers in %s", w.src.Query(t, "SHOW data_checksums"), numbers)
	}
	// An unlogged table's pages are written with no WAL, so no LSN tells
	// a page the copy caught halfway, and a restore empties the table
	// from its init fork: as pg_basebackup, which does not even copy it,
	// neither the copy nor the verifier judge it.
	w.src.Exec(t, "CREATE UNLOGGED TABLE scratch AS SELECT g, md5(g::text) AS v FROM generate_series(1, 20000) g", "CHECKPOINT")
	scratch := w.src.Query(t, "SELECT pg_relation_filepath('scratch')")
	corruptPages(t, w.src, map[string][]int{items: {3}, numbers: {0, 7}, scratch: {1}})
	// Where the backup reads them: a tablespace's files through its
	// link's target.
	itemsFile := filepath.Join(w.src.Data, items)
	_, inTbs, _ := strings.Cut(strings.TrimPrefix(numbers, "pg_tblspc/"), "/")
	numbersFile := filepath.Join(w.tbsDir, inTbs)

	var want map[string]string // PostgreSQL's checksums, by file and block
	if major == 15 {
		want = pgChecksums(t, w.src)
	}

	dir := t.TempDir()
	summary, prom := filepath.Join(dir, "summary.json"), filepath.Join(dir, "metrics.prom")
	id, log := w.backupLog(t, "-v", "--json-summary", summary, "--prometheus-textfile", prom)
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "checksum verification") || strings.Contains(l, "Summary:") {
			t.Log(l)
		}
	}
	for _, c := range []struct {
		file   string
		blocks []int
	}{{itemsFile, []int{3}}, {numbersFile, []int{0, 7}}} {
		line := regexp.MustCompile(fmt.Sprintf(`WARNING: checksum verification failed in file "%s", block %d: calculated ([0-9A-F]+) but expected ([0-9A-F]+)(.*)`,
			regexp.QuoteMeta(c.file), c.blocks[0])).FindStringSubmatch(log)
		if line == nil {
			t.Errorf("no warning for %s, blocks %v:\n%s", c.file, c.blocks, log)
			continue
		}
		total := "" // pg_basebackup's total, for more than one failure
		if len(c.blocks) > 1 {
			total = fmt.Sprintf("; the file has a total of %d checksum verification failures, in blocks %s",
				len(c.blocks), strings.Trim(strings.ReplaceAll(fmt.Sprint(c.blocks), " ", ", "), "[]"))
		}
		if line[3] != total {
			t.Errorf("%s: %q after the first block, want %q", c.file, line[3], total)
		}
		if want != nil {
			if pgsays := want[fmt.Sprintf("%s:%d", c.file, c.blocks[0])]; pgsays != line[1]+"/"+line[2] {
				t.Errorf("%s block %d: calculated/expected %s/%s, pg_checksums says %s", c.file, c.blocks[0], line[1], line[2], pgsays)
			}
		}
	}
	if strings.Count(log, "checksum verification failed in file") != 2 || !strings.Contains(log, "3 total checksum verification failures in 2 files") ||
		strings.Contains(log, scratch) {
		t.Errorf("want two files warned of, not the unlogged table's, and a total of 3 failures:\n%s", log)
	}
	s := readSummaryPages(t, summary)
	if s.State != "checked" || s.FailedPages != 3 || s.FailedFiles != 2 || s.PagesChecked < 2000 {
		t.Errorf("summary's page_checksums %+v; want checked, 3 failed pages in 2 files of over 2000", s)
	}
	if !strings.Contains(log, fmt.Sprintf("page checksums: %d pages checked, 3 FAILED in 2 files", s.PagesChecked)) {
		t.Errorf("the summary line does not count the failures:\n%s", tail(log, 3))
	}
	metrics, _ := os.ReadFile(prom)
	for _, m := range []string{`last_run_page_checksums_checked{server="main"} 1`, `last_run_page_checksum_failed_pages{server="main"} 3`,
		`last_run_page_checksum_failed_files{server="main"} 2`} {
		if !strings.Contains(string(metrics), "barman_cloud_backup_"+m+"\n") {
			t.Errorf("metrics lack %s:\n%s", m, metrics)
		}
	}

	// The verifier finds the same pages in the stored backup.
	r := w.verify(t, w.server, id)
	for _, p := range []string{
		items + ": checksum verification failed in block 3: ",
		numbers + ": checksum verification failed in block 0: ",
		"the file has a total of 2 checksum verification failures, in blocks 0, 7",
	} {
		if r.code != 1 || !strings.Contains(r.stdout, p) {
			t.Errorf("verify exited %d, want 1 and %q:\n%s%s", r.code, p, r.stdout, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "DAMAGED (2 problems)") || !regexp.MustCompile(`, \d+ pages checked \(3 failed\)`).MatchString(r.stdout) {
		t.Errorf("verify's verdict:\n%s", r.stdout)
	}

	// Told to, the run fails once every file is read.
	toml := filepath.Join(dir, "fail.toml")
	if err := os.WriteFile(toml, []byte("page_checksums = \"fail\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, how := range map[string]struct {
		args []string
		env  string
	}{
		"flag": {args: []string{"--page-checksums", "fail"}},
		"env":  {env: "BARMAN_CLOUD_BACKUP_PAGE_CHECKSUMS=fail"},
		"toml": {args: []string{"--config", toml}},
	} {
		if major != 15 && name != "flag" {
			continue
		}
		t.Run("fail-"+name, func(t *testing.T) {
			before := w.store.Keys(t, w.prefix+"/"+w.server+"/base/")
			waitNextSecond()
			fw := *w
			if how.env != "" {
				fw.env = append(append([]string{}, w.env...), how.env)
			}
			r := fw.run(t, how.args...)
			first := fmt.Sprintf("checksum verification failure during base backup: 3 pages in 2 files, the first in file %q, block ", numbersFile)
			if r.code != 1 || !strings.Contains(r.stderr, first) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", r.code, first, tail(r.stderr, 10))
			}
			info := string(w.newBackupInfo(t, before))
			if infoValue([]byte(info), "status") != "FAILED" || !strings.Contains(infoValue([]byte(info), "error"), numbersFile) {
				t.Errorf("backup.info of the failed run:\n%s", info)
			}
		})
	}

	// Off: nothing is checked, nothing said.
	_, log = w.backupLog(t, "-v", "--page-checksums", "off", "--json-summary", summary)
	if s := readSummaryPages(t, summary); s.State != "skipped" || strings.Contains(log, "checksum verification failed") ||
		!strings.Contains(log, "page checksums: not checked (--page-checksums off)") {
		t.Errorf("--page-checksums off: %+v\n%s", s, tail(log, 5))
	}

	if major == 15 {
		// A backup Barman 3.4 took is judged by the verifier too.
		waitNextSecond()
		mustRun(t, w.env, "barman-cloud-backup", append(w.cloud, "-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres",
			"--immediate-checkpoint", w.dest, "by-barman")...)
		r := w.verify(t, "by-barman", "latest")
		if r.code != 1 || !strings.Contains(r.stdout, items+": checksum verification failed in block 3: ") ||
			!strings.Contains(r.stdout, "the file has a total of 2 checksum verification failures, in blocks 0, 7") {
			t.Errorf("verify of Barman's backup exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
}

// pgChecksums runs PostgreSQL 15's pg_checksums --check on the stopped
// cluster and returns what it computed for each failing block, by the
// file's path as the backup reads it and block: "CALCULATED/STORED".
func pgChecksums(t *testing.T, c *Cluster) map[string]string {
	t.Helper()
	c.Stop(t)
	defer c.start(t)
	r := runCmd(t, nil, "runuser", "-u", "postgres", "--", pgBin("pg_checksums"), "--check", "-D", c.Data)
	out := map[string]string{}
	re := regexp.MustCompile(`checksum verification failed in file "([^"]+)", block (\d+): calculated checksum ([0-9A-F]+) but block contains ([0-9A-F]+)`)
	for _, m := range re.FindAllStringSubmatch(r.stderr+r.stdout, -1) {
		path := m[1]
		if resolved, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
			path = filepath.Join(resolved, filepath.Base(path))
		}
		out[path+":"+m[2]] = m[3] + "/" + m[4]
	}
	// It also checks the unlogged table's main fork, which the backup
	// does not judge.
	if len(out) != 4 {
		t.Fatalf("pg_checksums found %d failing blocks, want 4:\n%s%s", len(out), r.stdout, r.stderr)
	}
	return out
}

// No false report under a write load as heavy as the machine allows:
// pgbench with 8 clients and no rate limit, 2 MB of shared buffers, the
// background writer at full speed and a CHECKPOINT every half second, so
// pages reach the disk while they are read; PostgreSQL 18, whose initdb
// turns checksums on. Three backups in a row with --page-checksums fail
// must each succeed, with pages checked, and the verifier must find no
// failing page in any of them.
func TestPageChecksumsUnderLoad(t *testing.T) {
	m := StartMinIO(t, "load")
	w := &world{store: minioBucket{m, "load"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://load/pg", prefix: "pg", server: "main", bin: PGBin(t, 18)}
	walDir := postgresDir(t, "bcb-wal-")
	w.startSource(t, map[string]string{"shared_buffers": "'2MB'", "max_connections": "30",
		"bgwriter_delay": "'10ms'", "bgwriter_lru_maxpages": "1000", "archive_command": "'cp %p " + walDir + "/%f'"})
	if on := w.src.Query(t, "SHOW data_checksums"); on != "on" {
		t.Fatalf("PostgreSQL 18's initdb: data_checksums %s", on)
	}
	port := fmt.Sprint(w.src.Port)
	mustRun(t, nil, pgBin("pgbench"), "-i", "-q", "-s", "4", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")

	ctx, stop := context.WithCancel(context.Background())
	var out strings.Builder
	bench := exec.CommandContext(ctx, pgBin("pgbench"), "-c", "8", "-j", "2", "-T", "600", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	bench.Stdout, bench.Stderr = &out, &out
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	benchDone := make(chan struct{})
	go func() { bench.Wait(); close(benchDone) }()
	checkpoints := make(chan int)
	go func() {
		n := 0
		defer func() { checkpoints <- n }()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=postgres dbname=postgres", port))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err == nil {
				n++
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	defer func() {
		stop()
		<-benchDone
		t.Logf("%d checkpoints during the backups", <-checkpoints)
	}()
	time.Sleep(2 * time.Second) // the load is under way

	for run := range 3 {
		summary := filepath.Join(t.TempDir(), "summary.json")
		id, log := w.backupLog(t, "-v", "--page-checksums", "fail", "--json-summary", summary)
		s := readSummaryPages(t, summary)
		if s.State != "checked" || s.FailedPages != 0 || s.PagesChecked < 1000 {
			t.Errorf("run %d: page_checksums %+v\n%s", run+1, s, tail(log, 10))
		}
		verified := w.mustVerify(t, w.server, id)
		if !regexp.MustCompile(`, \d+ pages checked \(0 failed\)`).MatchString(verified) {
			t.Errorf("run %d: the verifier:\n%s", run+1, verified)
		}
		t.Logf("run %d: %d pages checked in the copy, none failed; the verifier: %s", run+1, s.PagesChecked,
			regexp.MustCompile(`\d+ pages checked \(0 failed\)`).FindString(verified))
	}
	// A load that died early proves nothing.
	select {
	case <-benchDone:
		t.Fatalf("pgbench stopped during the backups:\n%s", out.String())
	default:
	}
}
