//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
)

// Exit codes and messages as Barman gives them, against real servers.
func TestExitCodes(t *testing.T) {
	m := StartMinIO(t)
	src := StartPostgres(t, nil, nil)
	pgArgs := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres"}
	src.Exec(t, "CREATE ROLE plain LOGIN")
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"test-ok", m.Env(), []string{"-t", "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 0, ""},
		{"test-unreachable", m.Env(), []string{"-t", "--endpoint-url", dead, "s3://probe/x", "srv"}, 2, "can't connect to cloud provider"},
		{"backup-unreachable", m.Env(), append(pgArgs, "--endpoint-url", dead, "s3://probe/x", "srv"), 2, "can't connect to cloud provider"},
		{"no-credentials", []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="},
			[]string{"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 4, "Unable to locate credentials"},
		{"bad-url", m.Env(), []string{"--endpoint-url", m.Endpoint, "s4://probe/x", "srv"}, 4, "Invalid s3 URL address: s4://probe/x"},
		{"usage", nil, []string{"-z", "--snappy", "s3://probe/x", "srv"}, 3, "error: argument --snappy: not allowed with argument -z/--gzip"},
		{"bad-size", nil, []string{"-S", "lots", "s3://probe/x", "srv"}, 3, "'LOTS' is not a valid size string"},
		{"postgres-down", m.Env(), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "Cannot connect to postgres"},
		// A conninfo -d replaces -h/-p/-U, as in Barman.
		{"no-such-database", m.Env(), []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=nosuchdb", src.Port),
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, `database "nosuchdb" does not exist`},
		{"no-backup-privilege", m.Env(), []string{"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "plain",
			"--endpoint-url", m.Endpoint, "s3://probe/x", "srv"}, 1, "user lacks the privilege to execute pg_backup_start"},
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
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; c.code != 0 && c.code != 3 && lines != 1 {
				t.Errorf("want one line of error, got %d:\n%s", lines, r.stderr)
			}
		})
	}
	// The connectivity test must not leave anything behind.
	if keys := m.Keys(t, "probe", ""); len(keys) != 0 {
		t.Errorf("objects written: %v", keys)
	}
}

// Two runs started at once for the same server and destination: each
// backup that is reported done is whole, and a run that lost the race for
// a backup ID says so and leaves the other's backup alone.
func TestConcurrentRuns(t *testing.T) {
	m := StartMinIO(t)
	src := StartPostgres(t, nil, nil)
	src.Exec(t, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 200000) g")
	args := []string{"-z", "--immediate-checkpoint", "--endpoint-url", m.Endpoint, "-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres",
		"s3://twice/pfx", "main"}
	waitNextSecond()
	results := make(chan result, 2)
	for range 2 {
		go func() { results <- runCmd(t, m.Env(), binary, args...) }()
	}
	ok, clashed := 0, 0
	for range 2 {
		r := <-results
		switch {
		case r.code == 0:
			ok++
		case r.code == 1 && (strings.Contains(r.stderr, "another run is taking backup") || strings.Contains(r.stderr, "already exists")):
			clashed++
		default:
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
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
	if ok < 1 || ok+clashed != 2 || len(infos) != ok {
		t.Errorf("%d succeeded, %d clashed, %d backups stored", ok, clashed, len(infos))
	}
	t.Logf("%d succeeded, %d refused with a clash", ok, clashed)
}
