//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Exit codes and messages for bad input, as Barman gives them (the
// messages of the options Barman has are its own, compared by hand with
// Barman 3.4's), against real servers.
func TestExitCodes(t *testing.T) {
	m := StartMinIO(t, "probe", "noarchive")
	src := StartPostgres(t, nil, nil)
	pgArgs := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres"}
	src.Exec(t, "CREATE ROLE plain LOGIN", "CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 'right-Pa55word'")
	src.RequirePassword(t, "pwuser")
	minimal := StartPostgres(t, map[string]string{"wal_level": "minimal", "max_wal_senders": "0"}, nil)
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s3 := []string{"--endpoint-url", m.Endpoint}
	dir := t.TempDir()
	toml := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		msg    string
		secret string // must not appear in the output
	}{
		// The cloud.
		{"test-ok", m.Env(), []string{"-t", "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 0, "", ""},
		{"test-unreachable", m.Env(), []string{"-t", "--endpoint-url", dead, "s3://probe/x", "srv"}, 2, "can't connect to cloud provider", ""},
		// Barman 3.16: only -t exits 2; a backup that cannot reach the
		// cloud fails (1), and a missing bucket is never created (1).
		{"backup-unreachable", m.Env(), append(pgArgs, "--endpoint-url", dead, "s3://probe/x", "srv"), 1, "can't connect to cloud provider", ""},
		{"test-missing-bucket", m.Env(), []string{"-t", "--endpoint-url", m.Endpoint, "s3://nosuchbucket/x", "srv"}, 1, "Bucket nosuchbucket does not exist", ""},
		{"backup-missing-bucket", m.Env(), append(pgArgs, "--endpoint-url", m.Endpoint, "s3://nosuchbucket/x", "srv"), 1, "Bucket nosuchbucket does not exist", ""},
		{"no-credentials", []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="},
			[]string{"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 4, "Unable to locate credentials", ""},
		{"wrong-secret-key", []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=not-the-Secret-123", "AWS_EC2_METADATA_DISABLED=true"},
			[]string{"-t", "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 4, "signature we calculated does not match", "not-the-Secret-123"},
		// URLs.
		{"bad-url", m.Env(), []string{"--endpoint-url", m.Endpoint, "s4://probe/x", "srv"}, 4, "Invalid s3 URL address: s4://probe/x", ""},
		{"no-bucket", m.Env(), []string{"-t", "s3:///x", "srv"}, 4, "Invalid s3 URL address: s3:///x", ""},
		{"bad-endpoint", m.Env(), []string{"-t", "--endpoint-url", "ftp://x", "s3://probe/x", "srv"}, 4, `invalid endpoint URL "ftp://x"`, ""},
		{"remote-file-url", nil, []string{"-t", "file://otherhost/x", "srv"}, 4, "only local paths (file:///path) are supported", ""},
		// Options, as argparse words them.
		{"unknown-option", nil, []string{"--frobnicate", "s3://probe/x", "srv"}, 3, "error: unrecognized arguments: --frobnicate", ""},
		{"no-server-name", nil, []string{"s3://probe/x"}, 3, "error: the following arguments are required: server_name", ""},
		{"usage", nil, []string{"-z", "--snappy", "s3://probe/x", "srv"}, 3, "error: argument --snappy: not allowed with argument -z/--gzip", ""},
		{"gzip-and-bzip2", nil, []string{"-z", "--bzip2", "s3://probe/x", "srv"}, 3, "error: argument -j/--bzip2: not allowed with argument -z/--gzip", ""},
		{"jobs-zero", nil, []string{"-J", "0", "s3://probe/x", "srv"}, 3, "argument -J/--jobs: '0' is not a valid positive integer", ""},
		{"jobs-word", nil, []string{"-J", "x", "s3://probe/x", "srv"}, 3, "argument -J/--jobs: 'x' is not a valid input", ""},
		{"bad-size", nil, []string{"-S", "lots", "s3://probe/x", "srv"}, 3, "'LOTS' is not a valid size string", ""},
		{"size-trailing", nil, []string{"-S", "1TB5", "s3://probe/x", "srv"}, 3, "argument -S/--max-archive-size: '1TB5' is not a valid size string", ""},
		{"name-reserved", nil, []string{"-n", "latest", "s3://probe/x", "srv"}, 3, "Backup name 'latest' is not allowed: reserved word", ""},
		{"name-is-id", nil, []string{"-n", "20201212T121212", "s3://probe/x", "srv"}, 3, "Backup name '20201212T121212' is not allowed: backup ID", ""},
		{"tag-without-value", m.Env(), []string{"--tags", "onlykey", "s3://probe/x", "srv"}, 3, "Invalid tag format: onlykey", ""},
		{"read-timeout-word", nil, []string{"--read-timeout", "abc", "s3://probe/x", "srv"}, 3, "argument --read-timeout: invalid int value: 'abc'", ""},
		{"no-such-provider", nil, []string{"--cloud-provider", "nope", "s3://probe/x", "srv"}, 3, "argument --cloud-provider: invalid choice: 'nope'", ""},
		{"no-such-encryption", nil, []string{"-e", "foo", "s3://probe/x", "srv"}, 3, "argument -e/--encryption: invalid choice: 'foo'", ""},
		{"compression-level", nil, []string{"-z", "--compression-level", "99", "s3://probe/x", "srv"}, 3, "argument --compression-level", ""},
		// Barman 3.5 to 3.17's options and checks.
		{"snapshot", m.Env(), append(s3, "--snapshot-instance", "x", "--gcp-zone", "z", "s3://probe/x", "srv"), 3,
			"snapshot backups (--snapshot-instance, --snapshot-disk) are not supported", ""},
		{"snapshot-compressed", m.Env(), append(s3, "-z", "--snapshot-disk", "d", "s3://probe/x", "srv"), 4,
			"Compression options cannot be used with snapshot backups", ""},
		{"too-many-tags", m.Env(), append(s3, "--tags", "a,1", "b,2", "c,3", "d,4", "e,5", "f,6", "g,7", "h,8", "i,9", "j,10", "k,11", "--", "s3://probe/x", "srv"), 4,
			"Maximum number of tags per object exceeded. S3 allows no more than 10 tags per object.", ""},
		{"repeated-tag", m.Env(), append(s3, "--tag", "team,a", "--tag", "team,b", "s3://probe/x", "srv"), 4,
			"Duplicate tag keys found: team. Tag keys must be unique.", ""},
		{"bad-tag", nil, []string{"--tag", "team,dba!", "s3://probe/x", "srv"}, 3, "argument --tag: invalid check_tag value: 'team,dba!'", ""},
		{"tag-and-tags", nil, []string{"--tag", "a,1", "--tags", "b,2", "--", "s3://probe/x", "srv"}, 3, "argument --tags: not allowed with argument --tag", ""},
		{"reserved-name-317", nil, []string{"-n", "latest-full", "s3://probe/x", "srv"}, 3, "Backup name 'latest-full' is not allowed: reserved word", ""},
		{"azure-credential-choice", nil, []string{"--azure-credential", "secret", "s3://probe/x", "srv"}, 3,
			"argument --azure-credential/--credential/--default: invalid choice: 'secret'", ""},
		// The configuration file and the environment.
		{"toml-missing", nil, []string{"--config", filepath.Join(dir, "none.toml"), "s3://probe/x", "srv"}, 3, "none.toml: no such file or directory", ""},
		{"toml-syntax", nil, []string{"--config", toml("syntax.toml", "[s3]\nendpoint_url =\n"), "s3://probe/x", "srv"}, 3, "syntax.toml:2: ", ""},
		{"toml-type", nil, []string{"--config", toml("type.toml", "jobs = \"x\"\n"), "s3://probe/x", "srv"}, 3, `type.toml:1: key "jobs": want an integer`, ""},
		{"toml-unknown-key", nil, []string{"--config", toml("unknown.toml", "\nnosuchkey = 1\n"), "s3://probe/x", "srv"}, 3, `unknown.toml:2: unknown key "nosuchkey"`, ""},
		{"toml-bad-size", nil, []string{"--config", toml("size.toml", "max_archive_size = \"lots\"\n"), "s3://probe/x", "srv"}, 3,
			`size.toml:1: key "max_archive_size": 'LOTS' is not a valid size string`, ""},
		{"env-bad-jobs", []string{"BARMAN_CLOUD_BACKUP_JOBS=abc"}, []string{"s3://probe/x", "srv"}, 3,
			"environment variable BARMAN_CLOUD_BACKUP_JOBS: 'abc' is not a valid input", ""},
		{"env-missing-config", []string{"BARMAN_CLOUD_BACKUP_CONFIG=" + filepath.Join(dir, "none.toml")}, []string{"s3://probe/x", "srv"}, 3,
			"none.toml: no such file or directory", ""},
		// PostgreSQL.
		{"postgres-down", m.Env(), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "Cannot connect to postgres", ""},
		// A conninfo -d replaces -h/-p/-U, as in Barman.
		{"no-such-database", m.Env(), []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=nosuchdb", src.Port),
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, `database "nosuchdb" does not exist`, ""},
		{"wrong-password", m.Env(), []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=pwuser password=wrong-Pa55word dbname=postgres", src.Port),
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, `password authentication failed for user "pwuser"`, "wrong-Pa55word"},
		{"wrong-pgpassword", append(m.Env(), "PGPASSWORD=wrong-Pa55word"), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "pwuser",
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, `password authentication failed for user "pwuser"`, "wrong-Pa55word"},
		// libpq's settings are honoured, in -d and in the environment.
		{"sslmode-require", m.Env(), []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=require", src.Port),
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "server refused TLS connection", ""},
		{"pgsslmode-require", append(m.Env(), "PGSSLMODE=require"), append(pgArgs, "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"), 1,
			"server refused TLS connection", ""},
		{"no-backup-privilege", m.Env(), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "plain",
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "user lacks the privilege to execute pg_backup_start", ""},
		{"wal-level-minimal", m.Env(), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(minimal.Port), "-U", "postgres",
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "wal_level is 'minimal'", ""},
		// Not an error, as in Barman, but said: the backup needs WAL kept
		// by other means.
		{"archiving-off", m.Env(), append(pgArgs, "--endpoint-url", m.Endpoint, "s3://noarchive/x", "srv"), 0,
			"WARNING: WAL archiving is off (archive_mode)", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, c.env, binary, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			if c.msg != "" && !strings.Contains(r.stderr, c.msg) {
				t.Errorf("stderr lacks %q:\n%s", c.msg, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", r.stderr)
			}
			// Usage errors come after the usage line, as argparse's do.
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; c.code != 0 && c.code != 3 && lines != 1 {
				t.Errorf("want one line of error, got %d:\n%s", lines, r.stderr)
			}
			if c.code == 3 {
				last := strings.TrimSpace(r.stderr)
				last = last[strings.LastIndex(last, "\n")+1:]
				if !strings.Contains(last, c.msg) {
					t.Errorf("the last line does not say what is wrong: %q", last)
				}
			}
			if c.secret != "" && strings.Contains(r.stdout+r.stderr, c.secret) {
				t.Errorf("secret %q in the output:\n%s", c.secret, r.stderr)
			}
		})
	}
	// Bad input and the connectivity test leave nothing behind.
	if keys := m.Keys(t, "probe", ""); len(keys) != 0 {
		t.Errorf("objects written: %v", keys)
	}
}

// Two runs started at once for the same server and destination: each
// backup that is reported done is whole, and of two runs that took the
// same backup ID (it is the start time, to the second), exactly one backs
// up and the other says it lost the race and leaves the other's backup
// alone. Runs started in different seconds take different IDs and cannot
// clash: then the pair is started again, until a pair has clashed.
func TestConcurrentRuns(t *testing.T) {
	m := StartMinIO(t, "twice")
	src := StartPostgres(t, nil, nil)
	src.Exec(t, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 200000) g")
	dir := t.TempDir()
	type run struct {
		result
		summary struct {
			BackupID string `json:"backup_id"`
			Status   string `json:"status"`
			Error    string `json:"error"`
		}
	}
	done := 0
	for attempt := 1; ; attempt++ {
		if attempt > 5 {
			t.Fatalf("no two runs of %d pairs started within the same second: no clash was tried", attempt-1)
		}
		waitNextSecond()
		runs := make(chan run, 2)
		for i := range 2 {
			summary := filepath.Join(dir, fmt.Sprintf("summary-%d-%d.json", attempt, i))
			go func() {
				r := run{result: runCmd(t, m.Env(), binary, "-z", "--immediate-checkpoint", "--json-summary", summary,
					"--endpoint-url", m.Endpoint, "-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres", "s3://twice/pfx", "main")}
				raw, err := os.ReadFile(summary)
				if err == nil {
					err = json.Unmarshal(raw, &r.summary)
				}
				if err != nil {
					r.code, r.stderr = -1, fmt.Sprintf("summary: %v\n%s", err, r.stderr)
				}
				runs <- r
			}()
		}
		a, b := <-runs, <-runs
		if a.code == 0 {
			a, b = b, a // the failure, if any, first
		}
		if a.summary.BackupID != b.summary.BackupID {
			// Different IDs: both must succeed.
			for _, r := range []run{a, b} {
				if r.code != 0 || r.summary.Status != "DONE" {
					t.Fatalf("backup %s exited %d (%s) beside backup %s:\n%s", r.summary.BackupID, r.code, r.summary.Status,
						a.summary.BackupID+b.summary.BackupID, r.stderr)
				}
			}
			done += 2
			t.Logf("pair %d took backup IDs %s and %s: no clash possible, trying again", attempt, a.summary.BackupID, b.summary.BackupID)
			continue
		}
		id := a.summary.BackupID
		if b.code != 0 || b.summary.Status != "DONE" {
			t.Fatalf("both runs of backup %s failed:\n%s\n%s", id, a.stderr, b.stderr)
		}
		lost := regexp.MustCompile(`another run is taking backup ` + id + ` now|backup ` + id + ` already exists in the destination`)
		if a.code != 1 || a.summary.Status != "FAILED" || !lost.MatchString(a.stderr) || !lost.MatchString(a.summary.Error) {
			t.Fatalf("two runs took backup %s: one exited 0, the other %d (%s), not saying it lost the race:\n%s",
				id, a.code, a.summary.Status, a.stderr)
		}
		done++
		t.Logf("pair %d: both took backup ID %s; one backed up, the other refused: %s", attempt, id, lost.FindString(a.stderr))
		break
	}
	var infos []string
	for _, k := range m.Keys(t, "twice", "pfx/main/base/") {
		if strings.HasSuffix(k, ".lock") {
			t.Errorf("lock left behind: %s", k)
		}
		if strings.HasSuffix(k, "/backup.info") {
			infos = append(infos, k)
			if info := string(m.Get(t, "twice", k)); !strings.Contains(info, "status=DONE") {
				t.Errorf("%s:\n%s", k, info)
			}
		}
	}
	if len(infos) != done {
		t.Errorf("%d backups reported done, %d stored: %v", done, len(infos), infos)
	}
}
