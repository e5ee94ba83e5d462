package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
