package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 3 << 50: "3.0 PiB"} {
		if got := prettySize(n); got != want {
			t.Errorf("prettySize(%d) = %q, want %q", n, got, want)
		}
	}
}

func testRun(t *testing.T) *runInfo {
	cfg := conf.Defaults()
	cfg.ServerName, cfg.DestinationURL, cfg.Compression = "main", "s3://b/p", "gz"
	r := &runInfo{cfg: &cfg, id: "20261130T120000", start: time.Now().Add(-10 * time.Second), progress: &actors.Progress{}}
	r.progress.Read.Store(40 << 20)
	r.progress.Parts.Store(5)
	return r
}

func TestSummaryLine(t *testing.T) {
	r := testRun(t)
	res := &actors.Result{Objects: []actors.StoredObject{{Key: "p/main/base/20261130T120000/data.tar.gz", Size: 10 << 20},
		{Key: "p/main/base/20261130T120000/backup.info", Size: 1024}}}
	s := newSummary(r, res, nil, 0)
	line := s.line()
	for _, want := range []string{"backup 20261130T120000 DONE", "read 40.0 MiB", "stored 10.0 MiB", "(ratio 4.00)", "5 parts in 2 objects", "MiB/s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	if s.Compression != "gzip" || s.StoredBytes != 10<<20+1024 {
		t.Errorf("summary %+v", s)
	}
}

// A failed run's metrics keep the time of the last success, so that an
// alert on its age still fires; the file is replaced whole.
func TestPrometheusKeepsLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.prom")
	r := testRun(t)
	ok := newSummary(r, &actors.Result{}, nil, 0)
	if err := ok.writePrometheus(path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	failed := newSummary(r, nil, uploaders.ErrUnreachable, 2)
	failed.end = failed.end.Add(time.Hour)
	if err := failed.writePrometheus(path); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	success := func(b []byte) string {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "barman_cloud_backup_last_success_timestamp_seconds{") {
				return l
			}
		}
		return ""
	}
	if success(first) == "" || success(first) != success(second) {
		t.Errorf("last success %q, then %q", success(first), success(second))
	}
	for _, want := range []string{`barman_cloud_backup_last_run_success{server="main"} 0`, `barman_cloud_backup_last_run_exit_code{server="main"} 2`} {
		if !strings.Contains(string(second), want) {
			t.Errorf("no %q in\n%s", want, second)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
