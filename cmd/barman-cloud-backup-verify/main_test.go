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
		BackupID: "20261124T120000", Codec: codec, MaxArchiveSize: 100 << 30, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	return root
}

func runVerify(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodesAndOutput(t *testing.T) {
	root := stored(t)
	url := "file://" + root
	code, out, errs := runVerify(url, "pg", "latest")
	if code != 0 || !strings.Contains(out, "\nSOUND: backup 20261124T120000 of server pg: 1 object,") ||
		!strings.Contains(out, "4 of 4 files of backup_manifest checked") || !strings.Contains(out, "note: volumes compressed with zstd") {
		t.Fatalf("sound backup: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runVerify("--json", url, "pg", "20261124T120000")
	var rep actors.RestoreReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.Sound || rep.FilesChecked != 4 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if code, _, _ := runVerify("-t", url, "pg", "x"); code != 0 {
		t.Errorf("-t: exit %d", code)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no-such-backup", []string{url, "pg", "20200101T000000"}, 1, "Backup 20200101T000000 for server pg does not exist"},
		{"no-such-directory", []string{"file:///nonexistent/bcb", "pg", "latest"}, 1, "Bucket /nonexistent/bcb does not exist"},
		{"usage", []string{url, "pg"}, 3, "the following arguments are required: backup_id"},
		{"provider-option", []string{"--cloud-provider", "google-cloud-storage", "--endpoint-url", "http://x", url, "pg", "x"}, 3,
			"--endpoint-url is an option of the aws-s3 cloud provider"},
		{"malformed-url", []string{"s3:/bucket", "pg", "latest"}, 4, "Invalid s3 URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runVerify(c.args...)
			if code != c.code || !strings.Contains(out+errs, c.out) {
				t.Errorf("exit %d, want %d with %q:\n%s%s", code, c.code, c.out, out, errs)
			}
		})
	}

	// Damage: one byte of the archive.
	p := filepath.Join(root, "pg", "base", "20261124T120000", "data.tar.zst")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	code, out, errs = runVerify(url, "pg", "latest")
	if code != 1 || !strings.Contains(out, "data.tar.zst: corrupt") || !strings.Contains(out, "DAMAGED (") {
		t.Errorf("damaged: exit %d\n%s%s", code, out, errs)
	}
}
