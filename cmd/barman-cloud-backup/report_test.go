package main

import (
	"encoding/json"
	"math"
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
		if got := conf.PrettySize(n); got != want {
			t.Errorf("conf.PrettySize(%d) = %q, want %q", n, got, want)
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
	first := readFile(t, path)
	failed := newSummary(r, nil, uploaders.ErrUnreachable, 2)
	failed.end = failed.end.Add(time.Hour)
	if err := failed.writePrometheus(path); err != nil {
		t.Fatal(err)
	}
	second := readFile(t, path)
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

// phasesAt is a run's phases laid out from t0: start 1.5s, sweep 0.5s,
// copy 8s, stop 3s, upload tail 0.25s.
func phasesAt(t0 time.Time) actors.Phases {
	at := func(secs float64) time.Time { return t0.Add(time.Duration(secs * float64(time.Second))) }
	return actors.Phases{
		Start:      actors.Span{Begin: at(0), End: at(1.5)},
		Copy:       actors.Span{Begin: at(2), End: at(10)},
		Stop:       actors.Span{Begin: at(10), End: at(13)},
		UploadTail: actors.Span{Begin: at(13), End: at(13.25)},
	}
}

func TestSummaryPhases(t *testing.T) {
	r := testRun(t)
	s := newSummary(r, &actors.Result{}, nil, 0)
	s.Phases = newPhases(phasesAt(time.Now()), s.ReadBytes)
	line := s.line()
	// The older form first, unchanged, for what parses it.
	if !strings.Contains(line, "(ratio ") || !strings.Contains(line, " parts in 0 objects; phases: ") {
		t.Errorf("line %q", line)
	}
	if want := "; phases: start 1.5s, copy 8s (5.0 MiB/s), stop 3s, upload tail 300ms"; !strings.HasSuffix(line, want) {
		t.Errorf("line %q lacks %q", line, want)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Phases map[string]float64 }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"start_seconds": 1.5, "copy_seconds": 8, "stop_seconds": 3, "upload_tail_seconds": 0.25,
		"copy_read_bytes_per_second": 40 << 20 / 8}
	if len(got.Phases) != len(want) {
		t.Errorf("phases %v, want %v", got.Phases, want)
	}
	for k, v := range want {
		if math.Abs(got.Phases[k]-v) > 1e-6 {
			t.Errorf("%s = %v, want %v", k, got.Phases[k], v)
		}
	}

	path := filepath.Join(t.TempDir(), "backup.prom")
	if err := s.writePrometheus(path); err != nil {
		t.Fatal(err)
	}
	metrics := readFile(t, path)
	for _, want := range []string{
		"# TYPE barman_cloud_backup_last_run_phase_seconds gauge\n",
		`barman_cloud_backup_last_run_phase_seconds{server="main",phase="start"} 1.5` + "\n",
		`barman_cloud_backup_last_run_phase_seconds{server="main",phase="copy"} 8` + "\n",
		`barman_cloud_backup_last_run_phase_seconds{server="main",phase="stop"} 3` + "\n",
		`barman_cloud_backup_last_run_phase_seconds{server="main",phase="upload_tail"} 0.25` + "\n",
		`barman_cloud_backup_last_run_copy_read_bytes_per_second{server="main"} 5.24288e+06` + "\n",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	if n := strings.Count(string(metrics), "# TYPE barman_cloud_backup_last_run_phase_seconds "); n != 1 {
		t.Errorf("the phase metric is declared %d times:\n%s", n, metrics)
	}
}

// A run that failed during the copy has no copy, stop or tail to report:
// they are left out rather than given as 0s, which would read as fast.
func TestSummaryPhasesOfAFailedRun(t *testing.T) {
	r := testRun(t)
	s := newSummary(r, nil, uploaders.ErrUnreachable, 1)
	ph := phasesAt(time.Now())
	ph.Copy.End, ph.Stop, ph.UploadTail = time.Time{}, actors.Span{}, actors.Span{}
	s.Phases = newPhases(ph, s.ReadBytes)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Phases map[string]float64 }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Phases) != 1 || got.Phases["start_seconds"] != 1.5 {
		t.Errorf("phases of a failed run: %s", b)
	}
	path := filepath.Join(t.TempDir(), "backup.prom")
	if err := s.writePrometheus(path); err != nil {
		t.Fatal(err)
	}
	metrics := readFile(t, path)
	// The failure itself is there: what is left out is left out of a
	// file that was written.
	if !strings.Contains(string(metrics), `barman_cloud_backup_last_run_phase_seconds{server="main",phase="start"} 1.5`) {
		t.Errorf("metrics of a failed run lack its start:\n%s", metrics)
	}
	if strings.Contains(string(metrics), `phase="copy"`) || strings.Contains(string(metrics), "copy_read_bytes_per_second") {
		t.Errorf("metrics of a failed run report a copy:\n%s", metrics)
	}
}

// The stop's line relays only what PostgreSQL said since the stop was
// asked for: an earlier notice is about something else.
func TestStopLineRelaysNotices(t *testing.T) {
	p := &actors.Progress{}
	d := &display{p: p}
	if got := d.stopNotice(); got != "" {
		t.Errorf("before the stop: %q", got)
	}
	p.Notify("WARNING", "before the stop")
	time.Sleep(time.Millisecond) // the clock moves on between the two
	d.stopping = &phaseBar{start: time.Now()}
	time.Sleep(time.Millisecond)
	if got := d.stopNotice(); got != "" {
		t.Errorf("a notice from before the stop relayed: %q", got)
	}
	p.Notify("WARNING", "still waiting for all required WAL segments to be archived (60 seconds elapsed)")
	if got, want := d.stopNotice(), " (PostgreSQL WARNING: still waiting for all required WAL segments to be archived (60 seconds elapsed))"; got != want {
		t.Errorf("stop line %q, want %q", got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The page checksum check's outcome is in the line, the JSON and the
// metrics; a run that never reached the copy says nothing of it.
func TestSummaryPages(t *testing.T) {
	r := testRun(t)
	if s := newSummary(r, nil, uploaders.ErrUnreachable, 1); s.PageChecksums != nil || strings.Contains(s.line(), "page checksums") {
		t.Errorf("a run that did not copy: %+v", s.PageChecksums)
	}
	for _, c := range []struct {
		pages summaryPages
		line  string
		prom  []string
	}{
		{summaryPages{State: "checked", PagesChecked: 5000, FailedPages: 3, FailedFiles: 2}, "; page checksums: 5000 pages checked, 3 FAILED in 2 files",
			[]string{`last_run_page_checksums_checked{server="main"} 1`, `last_run_page_checksum_failed_pages{server="main"} 3`,
				`last_run_page_checksum_failed_files{server="main"} 2`, `last_run_page_checksum_pages_checked{server="main"} 5000`}},
		{summaryPages{State: "checked", PagesChecked: 5000}, "; page checksums: 5000 pages checked, none failed",
			[]string{`last_run_page_checksums_checked{server="main"} 1`, `last_run_page_checksum_failed_pages{server="main"} 0`}},
		{summaryPages{State: "off"}, "; page checksums: off in this cluster, not checked", []string{`last_run_page_checksums_checked{server="main"} 0`}},
		{summaryPages{State: "skipped"}, "; page checksums: not checked (--page-checksums off)", []string{`last_run_page_checksums_checked{server="main"} 0`}},
		{summaryPages{State: "unknown"}, "; page checksums: not checked (cannot tell whether the cluster has them)", []string{`last_run_page_checksums_checked{server="main"} 0`}},
		{summaryPages{State: "checked", PagesChecked: 1, FailedPages: 1, FailedFiles: 1}, "; page checksums: 1 page checked, 1 FAILED in 1 file", nil},
	} {
		s := newSummary(r, &actors.Result{}, nil, 0)
		s.PageChecksums = &c.pages
		if line := s.line(); !strings.HasSuffix(line, c.line) {
			t.Errorf("line %q lacks %q", line, c.line)
		}
		b, _ := json.Marshal(s)
		var got struct {
			Pages summaryPages `json:"page_checksums"`
		}
		if err := json.Unmarshal(b, &got); err != nil || got.Pages != c.pages {
			t.Errorf("JSON %s: %+v, %v", b, got.Pages, err)
		}
		path := filepath.Join(t.TempDir(), "backup.prom")
		if err := s.writePrometheus(path); err != nil {
			t.Fatal(err)
		}
		metrics := string(readFile(t, path))
		for _, want := range c.prom {
			if !strings.Contains(metrics, "barman_cloud_backup_"+want+"\n") {
				t.Errorf("no %q in\n%s", want, metrics)
			}
		}
	}
}
