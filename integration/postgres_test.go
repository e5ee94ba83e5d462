//go:build integration

package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a throwaway PostgreSQL cluster on a loopback port, run by
// the postgres OS user, which PostgreSQL requires.
type Cluster struct {
	Dir  string // holds data/, the log and the socket
	Data string
	Port int
	// Bin holds the server's programs (initdb, pg_ctl, postgres).
	Bin string
	env []string
}

// defaultPGBin is where PostgreSQL 15's programs are: Debian's, unless
// PG_BINDIR says otherwise.
func defaultPGBin() string {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir
	}
	return "/usr/lib/postgresql/15/bin"
}

// pgBin is the path of one of PostgreSQL 15's programs; its client
// programs (psql, pgbench, pg_basebackup) talk to every major.
func pgBin(name string) string {
	return filepath.Join(defaultPGBin(), name)
}

// PGMajors are the PostgreSQL majors the tests back up and restore: 15
// is Debian's, the others are the server programs setup.sh installs
// from npm into the cache.
var PGMajors = []int{13, 14, 15, 16, 17, 18}

// PGBin returns the directory of major's server programs. Those setup.sh
// installed live under root's home, which the postgres user cannot enter,
// so they are hard-linked (copied, across file systems) into a directory
// of their own, removed when the test ends: after every cluster the test
// started from it, since cleanups run last-registered first.
func PGBin(t testing.TB, major int) string {
	t.Helper()
	if major == 15 {
		return defaultPGBin()
	}
	home, _ := os.UserHomeDir()
	cache := os.Getenv("BCB_TOOLS")
	if cache == "" {
		cache = filepath.Join(home, ".cache", "bcb-tools")
	}
	src := filepath.Join(cache, "pg", strconv.Itoa(major))
	if _, err := os.Stat(filepath.Join(src, "bin", "postgres")); err != nil {
		t.Fatalf("no PostgreSQL %d: run integration/setup.sh to install it (%v)", major, err)
	}
	dir := filepath.Join(postgresDir(t, fmt.Sprintf("bcb-pg%d-", major)), "pg")
	if out, err := exec.Command("cp", "-al", src, dir).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
			t.Fatalf("copy PostgreSQL %d: %v\n%s", major, err, out)
		}
	} else if len(out) > 0 {
		t.Logf("cp -al: %s", out)
	}
	return filepath.Join(dir, "bin")
}

// asPostgres runs a PostgreSQL program, a path, as the postgres user.
func asPostgres(t testing.TB, env []string, program string, args ...string) string {
	t.Helper()
	full := append([]string{"-u", "postgres", "--", "env"}, env...)
	full = append(full, append([]string{program}, args...)...)
	return mustRun(t, nil, "runuser", full...)
}

// postgresDir makes a directory the postgres user owns, removed when the
// test ends.
func postgresDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	chownPostgres(t, dir)
	os.Chmod(dir, 0o755)
	return dir
}

func chownPostgres(t testing.TB, path string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, uid, gid)
		}
		return nil
	})
}

// StartPostgres initialises and starts a PostgreSQL 15 cluster with the
// given extra settings; env reaches the server and so its
// archive_command.
func StartPostgres(t testing.TB, settings map[string]string, env []string) *Cluster {
	t.Helper()
	return StartPostgresBin(t, defaultPGBin(), settings, env)
}

// StartPostgresBin is StartPostgres with the server programs in bin.
func StartPostgresBin(t testing.TB, bin string, settings map[string]string, env []string) *Cluster {
	t.Helper()
	return StartPostgresInit(t, bin, nil, settings, env)
}

// StartPostgresInit is StartPostgresBin with extra initdb arguments
// (--data-checksums, say).
func StartPostgresInit(t testing.TB, bin string, initdb []string, settings map[string]string, env []string) *Cluster {
	t.Helper()
	c := &Cluster{Dir: postgresDir(t, "bcb-pg-"), Bin: bin, env: env}
	c.Data = filepath.Join(c.Dir, "data")
	asPostgres(t, nil, c.program("initdb"), append([]string{"-D", c.Data, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"}, initdb...)...)
	conf := map[string]string{
		"listen_addresses": "'127.0.0.1'", "wal_level": "replica", "fsync": "off",
		"unix_socket_directories": "'" + c.Dir + "'", "max_wal_size": "'256MB'",
	}
	for k, v := range settings {
		conf[k] = v
	}
	c.appendConf(t, conf)
	c.start(t)
	return c
}

// program is the path of one of the cluster's server programs.
func (c *Cluster) program(name string) string {
	if c.Bin == "" {
		return pgBin(name)
	}
	return filepath.Join(c.Bin, name)
}

func (c *Cluster) appendConf(t testing.TB, conf map[string]string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(c.Data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for k, v := range conf {
		fmt.Fprintf(f, "%s = %s\n", k, v)
	}
}

func (c *Cluster) start(t testing.TB) {
	t.Helper()
	c.Port = freePort(t)
	asPostgres(t, c.env, c.program("pg_ctl"), "-D", c.Data, "-l", filepath.Join(c.Dir, "server.log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-p %d -k %s", c.Port, c.Dir), "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", c.program("pg_ctl"), "-D", c.Data, "-m", "immediate", "-w", "stop").Run()
	})
}

// Stop stops the server cleanly; start starts it again.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	asPostgres(t, nil, c.program("pg_ctl"), "-D", c.Data, "-m", "fast", "-w", "stop")
}

// StartStandby makes a streaming standby of primary with PostgreSQL 15's
// pg_basebackup (which streams from 15 and older only), each tablespace
// of primary's moved from its location to a new directory, and starts it
// with the given extra settings (the rest are primary's, archive_command
// included).
func StartStandby(t testing.TB, primary *Cluster, tablespaces []string, settings map[string]string, env []string) *Cluster {
	t.Helper()
	c := &Cluster{Dir: postgresDir(t, "bcb-standby-"), Bin: primary.Bin, env: env}
	c.Data = filepath.Join(c.Dir, "data")
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "postgres", "-D", c.Data,
		"-R", "-X", "stream", "-c", "fast"}
	for _, tbs := range tablespaces {
		args = append(args, "-T", tbs+"="+postgresDir(t, "bcb-standby-tbs-"))
	}
	asPostgres(t, nil, pgBin("pg_basebackup"), args...)
	conf := map[string]string{"unix_socket_directories": "'" + c.Dir + "'"}
	for k, v := range settings {
		conf[k] = v
	}
	c.appendConf(t, conf)
	c.start(t)
	if c.Query(t, "SELECT pg_is_in_recovery()::text") != "true" {
		t.Fatalf("the standby is not in recovery:\n%s", c.Log())
	}
	return c
}

// RequirePassword makes role log in with its password over TCP, where
// everyone else is trusted.
func (c *Cluster) RequirePassword(t testing.TB, role string) {
	t.Helper()
	hba := filepath.Join(c.Data, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	rule := fmt.Sprintf("host all %s 127.0.0.1/32 scram-sha-256\n", role)
	if err := os.WriteFile(hba, append([]byte(rule), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Exec(t, "SELECT pg_reload_conf()")
}

// Log is the server's log, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
	return string(b)
}

func (c *Cluster) connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", c.Port))
	if err != nil {
		t.Fatalf("connect to port %d: %v\n%s", c.Port, err, c.Log())
	}
	return conn
}

// Exec runs statements one by one.
func (c *Cluster) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	conn := c.connect(t)
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Query returns the first column of the first row as text.
func (c *Cluster) Query(t testing.TB, sql string) string {
	t.Helper()
	conn := c.connect(t)
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// Fingerprint summarises the test tables, in the default tablespace and
// in tbs1, so two clusters can be compared.
func (c *Cluster) Fingerprint(t testing.TB) string {
	t.Helper()
	return c.Query(t, `SELECT (SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM items) || '/' ||
		(SELECT count(*) || ':' || sum(n) FROM numbers)`)
}

// Archive makes sure every WAL record written so far is archived, so a
// restore can replay up to now.
func (c *Cluster) Archive(t testing.TB) {
	t.Helper()
	wal := c.Query(t, "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(60 * time.Second)
	for c.Query(t, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < wal {
		if time.Now().After(deadline) {
			t.Fatalf("WAL %s was not archived:\n%s", wal, c.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// StartRestored starts a PostgreSQL 15 cluster from a restored data
// directory, replaying WAL with restoreCommand until the archive ends,
// then promoting.
func StartRestored(t testing.TB, dir string, restoreCommand string, env []string) *Cluster {
	t.Helper()
	return StartRestoredBin(t, defaultPGBin(), dir, restoreCommand, env)
}

// StartRestoredBin is StartRestored with the server programs in bin.
func StartRestoredBin(t testing.TB, bin, dir string, restoreCommand string, env []string) *Cluster {
	t.Helper()
	return startRecovery(t, bin, dir, restoreCommand, env, nil)
}

// startRecovery starts the cluster restored in dir/data in recovery with
// restoreCommand and the given settings, and waits for it to leave
// recovery (to the archive's end, or to a recovery target).
func startRecovery(t testing.TB, bin, dir string, restoreCommand string, env []string, settings map[string]string) *Cluster {
	t.Helper()
	c := &Cluster{Dir: dir, Data: filepath.Join(dir, "data"), Bin: bin, env: env}
	conf := map[string]string{
		"restore_command":         "'" + strings.ReplaceAll(restoreCommand, "'", "''") + "'",
		"archive_mode":            "off",
		"unix_socket_directories": "'" + dir + "'",
	}
	maps.Copy(conf, settings)
	c.appendConf(t, conf)
	os.WriteFile(filepath.Join(c.Data, "recovery.signal"), nil, 0o600)
	chownPostgres(t, dir)
	os.Chmod(c.Data, 0o700)
	c.start(t)
	deadline := time.Now().Add(120 * time.Second)
	for c.Query(t, "SELECT pg_is_in_recovery()::text") != "false" {
		if time.Now().After(deadline) {
			t.Fatalf("restored cluster did not finish recovery:\n%s", c.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c
}
