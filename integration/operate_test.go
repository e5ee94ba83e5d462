//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// On a terminal, a backup shows one live line per phase, and they end
// before the summary line; the JSON summary matches the objects in the
// bucket. The archive_command takes 3s a segment, so pg_backup_stop
// waits at least that: the stop phase is measured so, the display names
// it, and PostgreSQL's notice about the wait reaches the display.
func TestProgressOnATerminal(t *testing.T) {
	w, m := newS3World(t)
	w.src.Archive(t) // the fill's WAL, before archiving slows down
	const archiveDelay = 3.0
	archive := fmt.Sprintf("sleep %g && barman-cloud-wal-archive %s %s %s %%p", archiveDelay, strings.Join(w.cloud, " "), w.dest, w.server)
	w.src.Exec(t, "ALTER SYSTEM SET archive_command TO '"+archive+"'", "SELECT pg_reload_conf()")
	summary := filepath.Join(t.TempDir(), "summary.json")
	cmd := exec.Command(binary, append(append([]string{}, w.cloud...), "-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port),
		"-U", "postgres", "--immediate-checkpoint", "-v", "-J", "1", "--json-summary", summary, w.dest, w.server)...)
	cmd.Env = append(os.Environ(), w.env...)
	screen, err := onTerminal(t, cmd)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, screen)
	}
	for _, want := range []string{" read, ", " stored", "ratio ",
		// Only the display puts the notice in parentheses; the log has it too.
		"(PostgreSQL NOTICE: all required WAL segments have been archived)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("no %q on the terminal:\n%q", want, screen)
		}
	}
	checkPhaseLines(t, ansi.ReplaceAllString(screen, ""))
	// The log lines and the progress lines never share a line, and the
	// summary comes last, after the progress has ended.
	lines := strings.Split(strings.TrimSpace(ansi.ReplaceAllString(screen, "")), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "INFO: Summary: backup ") {
		t.Errorf("the last line is not the summary: %q", last)
	}
	logged := 0
	for _, l := range lines {
		i := strings.Index(l, " INFO: ")
		if i < 0 {
			continue
		}
		logged++
		if !logLine.MatchString(l) {
			t.Errorf("a log line shares a line with the progress: %q", l)
		}
	}
	if logged < 5 {
		t.Errorf("-v logged %d lines during the progress:\n%s", logged, screen)
	}
	checkSummary(t, summary, m, "backups", "DONE")
	phases := summaryPhases(t, summary)
	if phases["stop_seconds"] < archiveDelay {
		t.Errorf("the stop took %.1fs, the archive_command sleeps %gs: %v", phases["stop_seconds"], archiveDelay, phases)
	}
	if !strings.Contains(last, "; phases: start ") || !strings.Contains(last, ", stop ") {
		t.Errorf("the summary line lacks the phases: %q", last)
	}

	// -q keeps a terminal quiet: no progress, no summary.
	quiet := exec.Command(binary, "-q", "-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres",
		"--immediate-checkpoint", "file://"+t.TempDir(), w.server)
	screen, err = onTerminal(t, quiet)
	if err != nil || strings.TrimSpace(screen) != "" {
		t.Errorf("-q on a terminal: %v, wrote %q", err, screen)
	}
}

// checkPhaseLines checks the display's phase lines on a screen: each
// phase the run went through is drawn, in the order of the phases. The
// display draws a phase it sees (it looks every 100ms) and every phase
// before it, so the checkpoint and the copy are drawn whenever the stop is
// seen, and the stop always is: it lasts as long as the archive_command
// sleeps. The finishing phase may end before the display looks (the
// upload tail can take milliseconds): its line is drawn or not, and if it
// is, it comes last.
func checkPhaseLines(t *testing.T, screen string) {
	t.Helper()
	// The display pads each phase's name to the longest one's width; so
	// no log line matches.
	const width = len("waiting for WAL archiving")
	last, lastName := -1, ""
	for _, name := range []string{"checkpoint", "copying", "waiting for WAL archiving", "finishing"} {
		at := strings.Index(screen, fmt.Sprintf("%-*s ", width, name))
		switch {
		case at < 0 && name == "finishing":
		case at < 0:
			t.Errorf("no %q line on the terminal:\n%q", name, screen)
		case at < last:
			t.Errorf("the %q line is drawn before the %q line:\n%q", name, lastName, screen)
		default:
			last, lastName = at, name
		}
	}
}

// logLine is a whole line in Barman's log format.
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] INFO: `)

// onTerminal runs cmd on a pseudo-terminal and returns all it wrote there.
func onTerminal(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, tty) // ends with EIO once the process is gone
		close(copied)
	}()
	err = cmd.Wait()
	<-copied
	tty.Close()
	return out.String(), err
}

// ansi matches the terminal control sequences the progress display uses.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\r`)

// summaryPhases reads the phases of a JSON summary; each phase of a
// successful run is there, and a copy rate.
func summaryPhases(t *testing.T, path string) map[string]float64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Phases map[string]float64 }
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"start_seconds", "copy_seconds", "stop_seconds", "upload_tail_seconds", "copy_read_bytes_per_second"} {
		if v, ok := s.Phases[k]; !ok || v <= 0 {
			t.Errorf("phases: %s is %v in %v", k, v, s.Phases)
		}
	}
	return s.Phases
}

// checkSummary compares the JSON summary with the objects in the bucket.
func checkSummary(t *testing.T, path string, m *MinIO, bucket, status string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		BackupID    string  `json:"backup_id"`
		Status      string  `json:"status"`
		ReadBytes   int64   `json:"read_bytes"`
		StoredBytes int64   `json:"stored_bytes"`
		Ratio       float64 `json:"compression_ratio"`
		Parts       int64   `json:"parts"`
		Duration    float64 `json:"duration_seconds"`
		Objects     []struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("summary %s: %v", raw, err)
	}
	if s.Status != status || s.ReadBytes <= 0 || s.Duration <= 0 || s.Parts < 1 {
		t.Fatalf("summary %s", raw)
	}
	inBucket := map[string]int64{}
	for _, k := range m.Keys(t, bucket, "") {
		if strings.Contains(k, "/base/"+s.BackupID+"/") {
			inBucket[k] = int64(len(m.Get(t, bucket, k)))
		}
	}
	var total int64
	for _, o := range s.Objects {
		if size, ok := inBucket[o.Key]; !ok || size != o.Size {
			t.Errorf("summary object %s of %d bytes; in the bucket: %d (present %v)", o.Key, o.Size, size, ok)
		}
		delete(inBucket, o.Key)
		total += o.Size
	}
	if len(inBucket) > 0 {
		t.Errorf("objects in the bucket missing from the summary: %v", inBucket)
	}
	if total != s.StoredBytes || s.Ratio <= 0 {
		t.Errorf("stored %d, objects add up to %d, ratio %v", s.StoredBytes, total, s.Ratio)
	}
}

// Away from a terminal (cron, a pipe) no progress is drawn; --log-format
// json gives one JSON object per line, each with the backup ID; the
// Prometheus textfile says when the run ended and how.
func TestLogsAndSummariesForMachines(t *testing.T) {
	w, m := newS3World(t)
	dir := t.TempDir()
	summary, prom := filepath.Join(dir, "summary.json"), filepath.Join(dir, "backup.prom")
	id, log := w.backupLog(t, "-vv", "--log-format", "json", "--json-summary", summary, "--prometheus-textfile", prom)
	parts := 0
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if e["backup_id"] != id || e["level"] == nil || e["message"] == nil || e["time"] == nil {
			t.Errorf("line without backup ID %s, level, message or time: %q", id, l)
		}
		if msg, _ := e["message"].(string); strings.HasPrefix(msg, "Uploaded ") && strings.Contains(msg, " bytes in ") {
			parts++
		}
	}
	if parts == 0 {
		t.Errorf("-vv logged no part upload:\n%s", log)
	}
	if strings.Contains(log, "copying") || strings.Contains(log, "\x1b[") {
		t.Errorf("progress drawn away from a terminal:\n%s", log)
	}
	checkSummary(t, summary, m, "backups", "DONE")
	metrics, _ := os.ReadFile(prom)
	for _, want := range []string{`barman_cloud_backup_last_run_success{server="main"} 1`, `barman_cloud_backup_last_success_timestamp_seconds{server="main"} `,
		`# TYPE barman_cloud_backup_last_run_stored_bytes gauge`, `barman_cloud_backup_last_run_phase_seconds{server="main",phase="stop"} `,
		`barman_cloud_backup_last_run_copy_read_bytes_per_second{server="main"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}

	// A failed run says so in both, and keeps the last success's time.
	// A backup that cannot reach the cloud exits 1 (Barman 3.16).
	r := w.run(t, "--endpoint-url", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), "--json-summary", summary, "--prometheus-textfile", prom)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
	}
	raw, _ := os.ReadFile(summary)
	var s struct{ Status, Error string }
	json.Unmarshal(raw, &s)
	if s.Status != "FAILED" || !strings.Contains(s.Error, "can't connect to cloud provider") {
		t.Errorf("summary after a failure: %s", raw)
	}
	metrics, _ = os.ReadFile(prom)
	for _, want := range []string{`barman_cloud_backup_last_run_success{server="main"} 0`, `barman_cloud_backup_last_run_exit_code{server="main"} 1`,
		`barman_cloud_backup_last_success_timestamp_seconds{server="main"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics after a failure lack %q:\n%s", want, metrics)
		}
	}
}
