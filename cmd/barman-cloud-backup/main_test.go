package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{nil, 0},
		{&conf.UsageError{Msg: "x"}, 3},
		{conf.ErrSnapshotUnsupported, 3},
		{&conf.FileError{Msg: "bcb.toml:3: unknown key"}, 3},
		{&conf.InputError{Msg: "Compression options cannot be used with snapshot backups"}, 4},
		// Barman 3.16: only -t exits 2; a missing bucket is 1, -t or not.
		{&connectivityError{fmt.Errorf("check bucket b: %w", uploaders.ErrUnreachable)}, 2},
		{fmt.Errorf("lock backup X: %w", uploaders.ErrUnreachable), 1},
		{&connectivityError{&uploaders.BucketMissingError{Bucket: "b"}}, 1},
		{fmt.Errorf("lock backup X: %w", &uploaders.BucketMissingError{Bucket: "b"}), 1},
		{&actors.FailedError{Err: errors.New("boom")}, 1},
		{fmt.Errorf("%w: refused", pg.ErrConnect), 1},
		{fmt.Errorf("%w: wal_level", errCheck), 1},
		{context.Canceled, 1},
		{errors.New("Invalid s3 URL address: s4://x"), 4},
	} {
		if got := exitCode(c.err); got != c.code {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

// CloudNativePG reads the version with "barman-cloud-backup VERSION" on
// the first line to decide what the tool supports.
func TestVersionText(t *testing.T) {
	lines := strings.Split(versionText(), "\n")
	if lines[0] != "barman-cloud-backup "+conf.BarmanVersion || !regexp.MustCompile(`^3\.\d+\.\d+$`).MatchString(conf.BarmanVersion) {
		t.Errorf("first line %q", lines[0])
	}
	if len(lines) < 2 || !strings.Contains(lines[1], conf.Version) {
		t.Errorf("our version missing: %q", versionText())
	}
}

func TestRunUsageAndVersion(t *testing.T) {
	if code := run([]string{"-V"}); code != 0 {
		t.Errorf("-V exit %d", code)
	}
	if code := run([]string{"-z", "-j", "s3://b/p", "srv"}); code != 3 {
		t.Errorf("conflicting codecs exit %d", code)
	}
	if code := run([]string{"--snapshot-instance", "i", "-z", "s3://b/p", "srv"}); code != 4 {
		t.Errorf("a compressed snapshot backup exit %d, Barman's 4", code)
	}
	if code := run([]string{"--snapshot-instance", "i", "s3://b/p", "srv"}); code != 3 {
		t.Errorf("a snapshot backup exit %d, want 3 (not supported)", code)
	}
	if code := run([]string{"--tags", "a,1", "a,2", "--", "s3://b/p", "srv"}); code != 4 {
		t.Errorf("a repeated tag key exit %d, Barman 3.15's 4", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[postgres]\nprot = 5432\n"), 0o600)
	if code := run([]string{"--config", bad}); code != 3 {
		t.Errorf("a typo in the configuration file: exit %d", code)
	}
	if code := run([]string{"--config", "../../example.toml", "--print-config"}); code != 0 {
		t.Errorf("--print-config: exit %d", code)
	}
}

// Barman reruns a post_backup_retry_script with the same backup ID until
// it exits 0, 62 or 63 (barman/hooks.py): a rerun after an attempt that
// left objects and its lock (killed with SIGKILL) uploads the backup, and
// one after the backup was stored exits 0 and uploads nothing.
func TestHookRerunConverges(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data", "global"), 0o700)
	os.WriteFile(filepath.Join(dir, "data", "PG_VERSION"), []byte("15\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "data", "global", "pg_control"), make([]byte, 8192), 0o600)
	info := (&pg.BackupInfo{ID: "20260101T000000", Status: pg.StatusDone, Version: pg.Int64(150018),
		PGData: "/var/lib/postgresql/15/main", BeginXLOG: "0/2000028", EndXLOG: "0/2000100", Timeline: pg.Int64(1)}).Marshal()
	os.WriteFile(filepath.Join(dir, "backup.info"), info, 0o600)
	for k, v := range map[string]string{"BARMAN_HOOK": "backup_retry_script", "BARMAN_PHASE": "post",
		"BARMAN_BACKUP_DIR": dir, "BARMAN_BACKUP_ID": "20260101T000000", "BARMAN_STATUS": "DONE"} {
		t.Setenv(k, v)
	}
	t.Setenv("TMPDIR", t.TempDir()) // where the takeover's host lock goes
	root := t.TempDir()
	base := filepath.Join(root, "pg", "base", "20260101T000000")
	os.MkdirAll(base, 0o700)
	os.WriteFile(filepath.Join(base, "data_0001.tar"), []byte("left by the failed attempt"), 0o600)
	host, _ := os.Hostname()
	dead := exec.Command("true")
	dead.Run()
	os.WriteFile(base+".lock", fmt.Appendf(nil, "pid=%d host=%s started=2026-01-01T00:00:00Z nonce=00\n", dead.Process.Pid, host), 0o600)

	if code := run([]string{"file://" + root, "pg"}); code != 0 {
		t.Fatalf("rerun after a failed attempt: exit %d", code)
	}
	stored := func() string {
		var names []string
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if _, err := os.Stat(base + ".lock"); err == nil {
			names = append(names, "(lock)")
		}
		return strings.Join(names, " ")
	}
	if got := stored(); got != "backup.info data.tar" {
		t.Fatalf("stored %q, want the backup alone", got)
	}
	if got, _ := os.ReadFile(filepath.Join(base, "backup.info")); string(got) != string(info) {
		t.Errorf("backup.info %q", got)
	}
	// Marked, to show the next rerun writes nothing.
	os.WriteFile(filepath.Join(base, "data.tar"), []byte("stored"), 0o600)
	if code := run([]string{"file://" + root, "pg"}); code != 0 {
		t.Fatalf("rerun after the backup was stored: exit %d", code)
	}
	if got, _ := os.ReadFile(filepath.Join(base, "data.tar")); string(got) != "stored" || stored() != "backup.info data.tar" {
		t.Errorf("the stored backup was touched: %s", stored())
	}
}
