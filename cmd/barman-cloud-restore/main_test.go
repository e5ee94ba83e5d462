package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

type source struct{ pgdata string }

func (s source) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	info.PGData, info.Status, info.Version = s.pgdata, pg.StatusStarted, pg.Int64(150004)
	info.BeginXLOG, info.Timeline, info.BeginWAL = "0/2C000028", pg.Int64(1), "00000001000000000000002C"
	return &pg.Layout{PGData: s.pgdata, MajorVersion: "15"}, nil
}

func (s source) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	info.EndXLOG, info.EndWAL = "0/2C000138", "00000001000000000000002C"
	label := "LABEL: test\n"
	info.BackupLabel = &label
	return []byte(label), nil
}

func (s source) Abort(ctx context.Context) {}

const backupID = "20261124T120000"

// stored makes a backup of a small PGDATA in a directory store.
func stored(t *testing.T) (root string) {
	t.Helper()
	pgdata := filepath.Join(t.TempDir(), "data")
	for name, body := range map[string]string{"PG_VERSION": "15\n", "global/pg_control": strings.Repeat("c", 8192),
		"base/5/1259": strings.Repeat("relation", 10000)} {
		os.MkdirAll(filepath.Dir(filepath.Join(pgdata, name)), 0o700)
		os.WriteFile(filepath.Join(pgdata, name), []byte(body), 0o600)
	}
	root = t.TempDir()
	store, _ := uploaders.NewFileStore(root)
	codec, _ := tarball.CodecByName("zstd", 0)
	if _, err := actors.Run(context.Background(), source{pgdata}, actors.Options{Store: store, ServerName: "pg",
		BackupID: backupID, Codec: codec, MaxArchiveSize: 100 << 30, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	return root
}

func runRestore(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRestoreExitCodesAndOutput(t *testing.T) {
	root := stored(t)
	url := "file://" + root
	dir := t.TempDir()
	summaryPath := filepath.Join(dir, "summary.json")
	data := filepath.Join(dir, "data")
	code, out, errs := runRestore("-v", "--json-summary", summaryPath, url, "pg", "latest", data)
	if code != 0 || !strings.Contains(errs, "Summary: backup "+backupID+" restored into "+data+": 5 files") ||
		!strings.Contains(errs, "every file checked against backup_manifest") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errs)
	}
	if b, err := os.ReadFile(filepath.Join(data, "base/5/1259")); err != nil || string(b) != strings.Repeat("relation", 10000) {
		t.Errorf("base/5/1259 restored as %d bytes, %v", len(b), err)
	}
	var s summary
	if b, err := os.ReadFile(summaryPath); err != nil || json.Unmarshal(b, &s) != nil || s.Status != "DONE" || s.BackupID != backupID ||
		s.ExitCode != 0 || s.Files != 5 || s.Verified != "checked" {
		t.Errorf("--json-summary: %+v, %v", s, err)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"test", []string{"-t", url, "pg", "x", filepath.Join(dir, "t")}, 0, ""},
		{"not-empty", []string{url, "pg", backupID, data}, 1, "Destination " + data + " already exists and it is not empty"},
		{"no-such-backup", []string{url, "pg", "20200101T000000", filepath.Join(dir, "a")}, 1,
			"Backup 20200101T000000 for server pg does not exists"},
		{"unknown-name", []string{url, "pg", "nightly", filepath.Join(dir, "b")}, 4, "Unknown backup 'nightly' for server 'pg'"},
		{"no-candidate", []string{"--target-time", "2000-01-01 00:00:00", url, "pg", "auto", filepath.Join(dir, "c")}, 1,
			"Cannot find any candidate backup for recovery."},
		{"no-such-directory", []string{"file:///nonexistent/bcb", "pg", "latest", filepath.Join(dir, "d")}, 1, "Bucket /nonexistent/bcb does not exist"},
		{"usage", []string{url, "pg", "latest"}, 3, "the following arguments are required: recovery_dir"},
		{"bad-rule", []string{"--tablespace", "tbs1", url, "pg", "latest", filepath.Join(dir, "e")}, 3, "Invalid tablespace relocation rule 'tbs1'"},
		{"snapshot", []string{"--snapshot-recovery-instance", "vm1", url, "pg", "latest", filepath.Join(dir, "f")}, 3, "not supported"},
		{"malformed-url", []string{"s3:/bucket", "pg", "latest", filepath.Join(dir, "g")}, 4, "Invalid s3 URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runRestore(c.args...)
			if code != c.code || !strings.Contains(out+errs, c.out) {
				t.Errorf("exit %d, want %d with %q:\n%s%s", code, c.code, c.out, out, errs)
			}
		})
	}

	// Damage: one byte of the archive; one ERROR line names the object,
	// and what is left cannot start.
	p := filepath.Join(root, "pg", "base", backupID, "data.tar.zst")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	damaged := filepath.Join(dir, "damaged")
	code, out, errs = runRestore("--json-summary", summaryPath, url, "pg", "latest", damaged)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "ERROR: Restore failed: data.tar.zst: corrupt") {
		t.Errorf("damaged: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(damaged, "global", "pg_control")); err == nil {
		t.Error("global/pg_control written by a failed restore")
	}
	if b, err := os.ReadFile(summaryPath); err != nil || json.Unmarshal(b, &s) != nil || s.Status != "FAILED" || s.ExitCode != 1 ||
		!strings.Contains(s.Error, "data.tar.zst") {
		t.Errorf("--json-summary of a failed restore: %+v, %v", s, err)
	}
}
