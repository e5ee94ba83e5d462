//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A base backup taken with the low-level API is only consistent if every
// file is read before pg_backup_stop: replay to the backup's end cannot
// undo what a file read later holds. This backs up a cluster under a heavy
// write load whose last seconds change commit status and shared catalogs
// (roles, in global/, which the walk reaches near its end), with a slow
// codec so the pipeline lags the walk, then:
//   - checks from the system calls (strace) that no file of PGDATA or the
//     tablespace is opened once the stop query is sent, and from -vv that
//     the engine read nothing after asking for the stop but backup_label;
//   - restores with Barman's barman-cloud-restore, recovers only to the
//     backup's end (recovery_target = 'immediate'), promotes, runs a write
//     workload that hands out the transaction IDs again, and checks the
//     result with pg_amcheck (heap and btree, every database), pgbench's
//     invariants, and that no transaction committed after the backup's end
//     is visible (ledger rows and roles stamped with a WAL position);
//   - with data checksums on, checks that the copy compared pages and
//     found none failing, and so does the verifier on the stored backup:
//     pages written while they were read are not judged (their LSN is
//     past the start) or read again, as pg_basebackup does, so a busy
//     server yields no false report.
//
// BCB_CONSISTENCY_RUNS repeats it (default 1).
func TestBackupReadsEverythingBeforeTheStop(t *testing.T) {
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("BCB_CONSISTENCY_RUNS")); err == nil && n > 0 {
		runs = n
	}
	for i := range runs {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) { consistencyRun(t) })
	}
}

func consistencyRun(t *testing.T) {
	m := StartMinIO(t, "consistency")
	w := &world{store: minioBucket{m, "consistency"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://consistency/pg", prefix: "pg", server: "main", initdb: []string{"--data-checksums"}}
	// Small shared buffers and frequent checkpoints put the load's
	// changes on disk within moments, as on any busy server. The load
	// writes WAL faster than barman-cloud-wal-archive ships it, and WAL
	// shipping is not what this tests: it is archived to a directory.
	walDir := postgresDir(t, "bcb-wal-")
	w.startSource(t, map[string]string{"shared_buffers": "'2MB'", "max_connections": "30",
		"bgwriter_delay": "'10ms'", "bgwriter_lru_maxpages": "1000",
		"archive_command": "'cp %p " + walDir + "/%f'"})
	port := fmt.Sprint(w.src.Port)
	mustRun(t, nil, pgBin("pgbench"), "-i", "-q", "-s", "4", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	w.src.Exec(t, "CREATE TABLE ledger (n bigint PRIMARY KEY, lsn pg_lsn NOT NULL)")

	ctx, stop := context.WithCancel(context.Background())
	load := startLoad(t, ctx, w.src)
	time.Sleep(2 * time.Second) // the load is under way before the backup starts

	trace := "/tmp/strace-debug.txt"
	args := append(append([]string{"-f", "-tt", "-qq", "-s", "1024", "-e", "trace=openat,write,sendto", "-o", trace, binary},
		w.cloud...), "-vv", "-j", "-J", "2", "-h", "127.0.0.1", "-p", port, "-U", "postgres", w.dest, w.server)
	waitNextSecond()
	began := time.Now()
	r := runCmd(t, w.env, "strace", args...)
	t.Logf("backup under load took %s", time.Since(began).Round(time.Millisecond))
	for _, l := range strings.Split(r.stderr, "\n") {
		if regexp.MustCompile(`Starting backup|requesting the backup stop|Stopping backup|Backup end|Backup completed|Uploading 'pgdata'`).MatchString(l) {
			t.Log(l)
		}
	}
	// The load goes on a moment after the stop, so files read late
	// would hold its changes.
	time.Sleep(time.Second)
	stop()
	load.wait(t)
	if r.code != 0 {
		t.Fatalf("backup exited %d:\n%s", r.code, tail(r.stderr, 40))
	}
	if checked := regexp.MustCompile(`page checksums: (\d+) pages checked, none failed`).FindStringSubmatch(r.stderr); checked == nil ||
		strings.Contains(r.stderr, "checksum verification failed") {
		t.Errorf("page checksums under load:\n%s", tail(r.stderr, 20))
	} else {
		t.Logf("page checksums under load: %s pages checked, none failed", checked[1])
	}
	ids := w.ids(t)
	if len(ids) != 1 {
		t.Fatalf("backups listed: %v", ids)
	}
	id := ids[0]
	checkNoReadAfterStop(t, trace, r.stderr, w.src.Data, w.tbsDir)
	// The verifier, which cannot read a page again, judges the stored
	// pages the same: none fails.
	if out := w.mustVerify(t, w.server, id); !regexp.MustCompile(`, \d+ pages checked \(0 failed\)`).MatchString(out) {
		t.Errorf("the verifier did not check the pages of the backup taken under load:\n%s", out)
	}

	end := infoValue(w.store.Get(t, w.basePrefix(id)+"backup.info"), "end_xlog")
	if end == "" {
		t.Fatalf("backup.info has no end_xlog")
	}
	if late := w.src.Query(t, fmt.Sprintf("SELECT count(*)::text FROM ledger WHERE lsn > '%s'", end)); late == "0" {
		t.Fatalf("the load wrote nothing after the backup's end (%s): the test proves nothing", end)
	}
	w.src.Archive(t)

	began = time.Now()
	restored := w.restoreImmediate(t, id, "cp "+walDir+"/%f %p")
	t.Logf("restore and recovery took %s", time.Since(began).Round(time.Millisecond))
	// Write on the restored cluster: it hands out the transaction IDs the
	// source used after the backup's end again; a tuple of those that a
	// late read carried over would now look committed.
	// -n: pgbench would otherwise empty pgbench_history first.
	mustRun(t, nil, pgBin("pgbench"), "-n", "-c", "4", "-j", "2", "-t", "1500", "-h", "127.0.0.1", "-p", fmt.Sprint(restored.Port), "-U", "postgres", "postgres")
	restored.Exec(t, "CHECKPOINT")

	out := runCmd(t, nil, pgBin("pg_amcheck"), "-h", "127.0.0.1", "-p", fmt.Sprint(restored.Port), "-U", "postgres",
		"--all", "--install-missing", "--heapallindexed", "--parent-check", "--rootdescend")
	if out.code != 0 {
		t.Errorf("pg_amcheck found corruption (exit %d):\n%s%s", out.code, tail(out.stdout, 40), tail(out.stderr, 10))
	}
	invariants := `SELECT ((SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND
		 (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND
		 (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND
		 (SELECT count(*) FROM pgbench_accounts) = 400000)::text`
	if got := restored.Query(t, invariants); got != "true" {
		t.Errorf("pgbench's invariants do not hold on the restored cluster: %s", restored.Query(t, `SELECT concat_ws(' ',
			(SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
			(SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history),
			(SELECT count(*) FROM pgbench_accounts))`))
	}
	if n := restored.Query(t, fmt.Sprintf("SELECT count(*)::text FROM ledger WHERE lsn > '%s'", end)); n != "0" {
		t.Errorf("%s ledger rows committed after the backup's end %s are visible", n, end)
	}
	// Roles live in global/pg_authid; each was created in the transaction
	// of a ledger row, so its WAL position is known from the source.
	late := strings.Split(w.src.Query(t, fmt.Sprintf(`SELECT coalesce(string_agg('bcb_r_' || n, ','), '') FROM ledger WHERE lsn > '%s'`, end)), ",")
	roles := strings.Split(restored.Query(t, `SELECT coalesce(string_agg(rolname, ','), '') FROM pg_authid WHERE rolname LIKE 'bcb\_r\_%'`), ",")
	var ghosts []string
	for _, r := range roles {
		if contains(late, r) {
			ghosts = append(ghosts, r)
		}
	}
	if len(ghosts) > 0 {
		t.Errorf("%d roles created after the backup's end are visible, among them %v", len(ghosts), ghosts[:min(len(ghosts), 5)])
	}
	if n := restored.Query(t, "SELECT count(*)::text FROM ledger"); n == "0" {
		t.Errorf("the restored ledger is empty: the backup's own rows are missing")
	}
}

// restoreImmediate restores with Barman's barman-cloud-restore and
// recovers only as far as the backup needs to be consistent, then
// promotes: the least WAL replay the backup allows, so nothing after its
// end can paper over a late read.
func (w *world) restoreImmediate(t *testing.T, id, restoreCommand string) *Cluster {
	t.Helper()
	dir := postgresDir(t, "bcb-restore-")
	mustRun(t, w.env, "barman-cloud-restore", append(w.cloud, "--tablespace", "tbs1:"+filepath.Join(dir, "tbs1"),
		w.dest, w.server, id, filepath.Join(dir, "data"))...)
	return startRecovery(t, defaultPGBin(), dir, restoreCommand, w.env, map[string]string{
		"recovery_target":        "'immediate'",
		"recovery_target_action": "'promote'",
	})
}

// load is the write workload on the source: pgbench, a ledger of
// transactions each stamped with its WAL position and each creating a
// role, tables created, filled and dropped, and frequent checkpoints.
type load struct {
	pgbench *exec.Cmd
	out     *strings.Builder
	wg      sync.WaitGroup
	errs    chan error
	ledger  atomic.Int64
}

func startLoad(t *testing.T, ctx context.Context, c *Cluster) *load {
	t.Helper()
	l := &load{out: &strings.Builder{}, errs: make(chan error, 8)}
	l.pgbench = exec.CommandContext(ctx, pgBin("pgbench"), "-c", "6", "-j", "2", "-T", "600", "-R", "400", "-h", "127.0.0.1",
		"-p", fmt.Sprint(c.Port), "-U", "postgres", "postgres")
	l.pgbench.Stdout, l.pgbench.Stderr = l.out, l.out
	if err := l.pgbench.Start(); err != nil {
		t.Fatal(err)
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", c.Port)
	loop := func(name string, pause time.Duration, step func(ctx context.Context, conn *pgx.Conn, i int64) error) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			conn, err := pgx.Connect(ctx, conninfo)
			if err != nil {
				l.errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			defer conn.Close(context.Background())
			for i := int64(1); ctx.Err() == nil; i++ {
				if err := step(ctx, conn, i); err != nil && ctx.Err() == nil {
					l.errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	for worker := range int64(2) {
		loop("ledger", 0, func(ctx context.Context, conn *pgx.Conn, i int64) error {
			n := i*2 + worker
			_, err := conn.Exec(ctx, fmt.Sprintf(`BEGIN; CREATE ROLE bcb_r_%d;
				INSERT INTO ledger VALUES (%d, pg_current_wal_insert_lsn()); COMMIT`, n, n))
			l.ledger.Add(1)
			return err
		})
	}
	loop("tables", 20*time.Millisecond, func(ctx context.Context, conn *pgx.Conn, i int64) error {
		_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE churn_%d AS SELECT g, md5(g::text) v FROM generate_series(1, 2000) g;
			CREATE INDEX ON churn_%d (v); DROP TABLE IF EXISTS churn_%d`, i, i, max(i-3, 0)))
		return err
	})
	loop("checkpoints", time.Second, func(ctx context.Context, conn *pgx.Conn, i int64) error {
		_, err := conn.Exec(ctx, "CHECKPOINT")
		return err
	})
	return l
}

// wait ends the load (its context is cancelled) and fails the test if a
// part of it failed on its own.
func (l *load) wait(t *testing.T) {
	t.Helper()
	l.wg.Wait()
	l.pgbench.Wait()
	close(l.errs)
	for err := range l.errs {
		t.Errorf("load: %v", err)
	}
	if l.ledger.Load() < 10 {
		t.Fatalf("the load barely ran (%d ledger rows)", l.ledger.Load())
	}
}

var (
	straceOpen = regexp.MustCompile(`^\d+\s+(\S+) openat\(AT_FDCWD, "([^"]+)"`)
	straceStop = regexp.MustCompile(`^\d+\s+(\S+) (write|sendto)\(.*pg_(backup_stop|stop_backup)\(`)
)

// checkNoReadAfterStop reads an strace log of the backup: once the query
// that stops the backup is written to PostgreSQL's socket, no file under
// PGDATA or the tablespace may be opened. The -vv log must agree: after
// the engine asks for the stop, it reads only backup_label.
func checkNoReadAfterStop(t *testing.T, trace, log, pgdata, tbs string) {
	t.Helper()
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	stopAt, opened := "", 0
	var late []string
	for sc.Scan() {
		line := sc.Text()
		if m := straceStop.FindStringSubmatch(line); m != nil && stopAt == "" {
			stopAt = m[1]
			continue
		}
		m := straceOpen.FindStringSubmatch(line)
		if m == nil || (!strings.HasPrefix(m[2], pgdata+"/") && !strings.HasPrefix(m[2], tbs+"/")) {
			continue
		}
		if stopAt == "" {
			opened++
		} else {
			late = append(late, m[1]+" "+m[2])
		}
	}
	if stopAt == "" || opened < 100 {
		t.Fatalf("strace saw %d files opened and the stop query at %q: the trace proves nothing", opened, stopAt)
	}
	if len(late) > 0 {
		t.Errorf("%d files opened after the stop query was sent at %s:\n%s", len(late), stopAt, strings.Join(late[:min(len(late), 20)], "\n"))
	} else {
		t.Logf("strace: %d files of PGDATA and the tablespace opened, all before the stop query at %s", opened, stopAt)
	}

	lines := strings.Split(log, "\n")
	stopLine := -1
	for i, l := range lines {
		if strings.Contains(l, "requesting the backup stop") {
			stopLine = i
			break
		}
	}
	if stopLine < 0 {
		t.Errorf("-vv did not log the stop request:\n%s", tail(log, 20))
		return
	}
	for _, l := range lines[stopLine:] {
		if _, name, ok := strings.Cut(l, "DEBUG: Uploading "); ok && name != "backup_label" {
			t.Errorf("-vv: %s read after the stop was requested", name)
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n"
}

// infoValue is a key's value in backup.info ("" when absent or None).
func infoValue(info []byte, key string) string {
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok && v != "None" {
			return v
		}
	}
	return ""
}
