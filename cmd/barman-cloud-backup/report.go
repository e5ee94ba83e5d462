package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// summary is what one run did, for the closing log line, --json-summary
// and --prometheus-textfile.
type summary struct {
	BackupID    string  `json:"backup_id"`
	BackupName  string  `json:"backup_name,omitempty"`
	ServerName  string  `json:"server_name"`
	Destination string  `json:"destination"`
	Status      string  `json:"status"` // DONE or FAILED
	Error       string  `json:"error,omitempty"`
	ExitCode    int     `json:"exit_code"`
	Compression string  `json:"compression"`
	BeginTime   string  `json:"begin_time"`
	EndTime     string  `json:"end_time"`
	Duration    float64 `json:"duration_seconds"`
	// ReadBytes is what was read from the files; StoredBytes what the
	// archives take in the destination, backup.info included.
	ReadBytes   int64           `json:"read_bytes"`
	StoredBytes int64           `json:"stored_bytes"`
	Ratio       float64         `json:"compression_ratio"`
	Throughput  float64         `json:"throughput_bytes_per_second"`
	Parts       int64           `json:"parts"`
	Objects     []summaryObject `json:"objects"`
	// Phases is where the time went; a phase the run did not complete
	// is left out.
	Phases summaryPhases `json:"phases"`
	// PageChecksums is what the copy's check of data page checksums
	// found; absent when the copy did not start.
	PageChecksums *summaryPages `json:"page_checksums,omitempty"`

	begin, end time.Time
}

// summaryPages is the page checksum check's outcome (actors.PageTally).
type summaryPages struct {
	// State is "checked", "off" (the cluster has no data checksums),
	// "skipped" (--page-checksums off) or "unknown" (whether the cluster
	// has them could not be told).
	State        string `json:"state"`
	PagesChecked int64  `json:"pages_checked"`
	FailedPages  int64  `json:"failed_pages"`
	FailedFiles  int64  `json:"failed_files"`
}

// pageStates are the words for actors.PageState.
var pageStates = map[actors.PageState]string{actors.PagesChecked: "checked", actors.PagesNoChecksums: "off",
	actors.PagesSkipped: "skipped", actors.PagesUndetermined: "unknown"}

func newPages(t *actors.PageTally) *summaryPages {
	state, ok := pageStates[t.State()]
	if !ok {
		return nil
	}
	return &summaryPages{State: state, PagesChecked: t.Checked.Load(), FailedPages: t.FailedPages.Load(), FailedFiles: t.FailedFiles.Load()}
}

// text is the check's outcome for the summary line.
func (p *summaryPages) text() string {
	switch {
	case p.State == "off":
		return "off in this cluster, not checked"
	case p.State == "skipped":
		return "not checked (--page-checksums off)"
	case p.State == "unknown":
		return "not checked (cannot tell whether the cluster has them)"
	case p.FailedPages == 0:
		return counted(p.PagesChecked, "page") + " checked, none failed"
	}
	return fmt.Sprintf("%s checked, %d FAILED in %s", counted(p.PagesChecked, "page"), p.FailedPages, counted(p.FailedFiles, "file"))
}

// counted is n and the noun, plural but for one.
func counted(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// summaryPhases are the phases' durations in seconds (actors.Phases), and
// the copy's rate: the bytes read per second between the first byte read
// and the last, which, unlike the whole run's throughput, leaves out the
// checkpoint and the wait for the WAL archive.
type summaryPhases struct {
	Start      *float64 `json:"start_seconds,omitempty"`
	Copy       *float64 `json:"copy_seconds,omitempty"`
	Stop       *float64 `json:"stop_seconds,omitempty"`
	UploadTail *float64 `json:"upload_tail_seconds,omitempty"`
	CopyRate   *float64 `json:"copy_read_bytes_per_second,omitempty"`
}

// named is the phases as the line and the Prometheus label name
// them, in order, with where each one's seconds are.
func (p *summaryPhases) named() []struct {
	name    string
	seconds *float64
} {
	return []struct {
		name    string
		seconds *float64
	}{{"start", p.Start}, {"copy", p.Copy}, {"stop", p.Stop}, {"upload_tail", p.UploadTail}}
}

func newPhases(ph actors.Phases, read int64) summaryPhases {
	secs := func(s actors.Span) *float64 {
		if !s.Done() {
			return nil
		}
		v := s.Duration().Seconds()
		return &v
	}
	p := summaryPhases{Start: secs(ph.Start), Copy: secs(ph.Copy), Stop: secs(ph.Stop), UploadTail: secs(ph.UploadTail)}
	if p.Copy != nil && *p.Copy > 0 {
		rate := float64(read) / *p.Copy
		p.CopyRate = &rate
	}
	return p
}

type summaryObject struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

func newSummary(r *runInfo, res *actors.Result, err error, code int) *summary {
	s := &summary{BackupID: r.id, BackupName: r.cfg.BackupName, ServerName: r.cfg.ServerName,
		Destination: r.cfg.DestinationURL, Status: pg.StatusDone, ExitCode: code,
		Compression: tarball.CompressionWord(r.cfg.Compression), begin: r.start, end: time.Now(),
		ReadBytes: r.progress.Read.Load(), Parts: r.progress.Parts.Load(), Objects: []summaryObject{}}
	if err != nil {
		s.Status, s.Error = pg.StatusFailed, describe(err)
	}
	s.BeginTime, s.EndTime = s.begin.Format(time.RFC3339Nano), s.end.Format(time.RFC3339Nano)
	s.Duration = s.end.Sub(s.begin).Seconds()
	if res != nil {
		for _, o := range res.Objects {
			s.Objects = append(s.Objects, summaryObject{Key: o.Key, Size: o.Size})
			s.StoredBytes += o.Size
		}
	} else {
		s.StoredBytes = r.progress.Stored.Load()
	}
	if s.StoredBytes > 0 {
		s.Ratio = float64(s.ReadBytes) / float64(s.StoredBytes)
	}
	if s.Duration > 0 {
		s.Throughput = float64(s.ReadBytes) / s.Duration
	}
	s.Phases = newPhases(r.progress.Phases(), s.ReadBytes)
	s.PageChecksums = newPages(&r.progress.Pages)
	return s
}

// line is the summary for humans, one log line.
func (s *summary) line() string {
	name := ""
	if s.BackupName != "" {
		name = fmt.Sprintf(" (%s)", s.BackupName)
	}
	line := fmt.Sprintf("Summary: backup %s%s %s: read %s, stored %s (ratio %.2f) in %s, %s/s, %d parts in %d objects",
		s.BackupID, name, s.Status, conf.PrettySize(s.ReadBytes), conf.PrettySize(s.StoredBytes), s.Ratio,
		roundSeconds(s.Duration), conf.PrettySize(int64(s.Throughput)),
		s.Parts, len(s.Objects))
	// Appended, so that what parses the line's older form still can.
	var phases []string
	for _, p := range s.Phases.named() {
		if p.seconds == nil {
			continue
		}
		text := strings.ReplaceAll(p.name, "_", " ") + " " + roundSeconds(*p.seconds).String()
		if p.name == "copy" && s.Phases.CopyRate != nil {
			text += fmt.Sprintf(" (%s/s)", conf.PrettySize(int64(*s.Phases.CopyRate)))
		}
		phases = append(phases, text)
	}
	if len(phases) > 0 {
		line += "; phases: " + strings.Join(phases, ", ")
	}
	if s.PageChecksums != nil {
		line += "; page checksums: " + s.PageChecksums.text()
	}
	return line
}

// roundSeconds is secs as a duration to a tenth of a second, for people.
func roundSeconds(secs float64) time.Duration {
	return time.Duration(secs * float64(time.Second)).Round(100 * time.Millisecond)
}

// writeJSON writes the summary to path, atomically: a monitoring job never
// reads half a file.
func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return uploaders.WriteFile(path, append(b, '\n'), 0o644)
}

// writePrometheus writes the summary as metrics for node_exporter's
// textfile collector. The time of the last success is carried over from
// the file a failed run replaces, so an alert on its age keeps working.
func (s *summary) writePrometheus(path string) error {
	const p = "barman_cloud_backup_"
	lastSuccess := ""
	if s.Status == pg.StatusDone {
		lastSuccess = fmt.Sprint(s.end.Unix())
	} else if old, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(old), "\n") {
			if strings.HasPrefix(l, p+"last_success_timestamp_seconds{") {
				lastSuccess = l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
	}
	labels := fmt.Sprintf(`{server=%q}`, s.ServerName)
	var b strings.Builder
	metric := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s%s %s\n# TYPE %s%s gauge\n%s%s%s %v\n", p, name, help, p, name, p, name, labels, v)
	}
	ok := 0
	if s.Status == pg.StatusDone {
		ok = 1
	}
	metric("last_run_timestamp_seconds", "When the last run ended.", s.end.Unix())
	metric("last_run_success", "1 if the last run stored a backup, 0 if it failed.", ok)
	metric("last_run_exit_code", "Exit code of the last run.", s.ExitCode)
	if lastSuccess != "" {
		metric("last_success_timestamp_seconds", "When the last successful run ended.", lastSuccess)
	}
	metric("last_run_duration_seconds", "Duration of the last run.", s.Duration)
	metric("last_run_read_bytes", "Bytes read from PostgreSQL's files by the last run.", s.ReadBytes)
	metric("last_run_stored_bytes", "Bytes stored in the destination by the last run.", s.StoredBytes)
	metric("last_run_parts", "Uploads made by the last run.", s.Parts)
	// One metric with a phase label, so that a dashboard can stack them.
	first := true
	for _, ph := range s.Phases.named() {
		if ph.seconds == nil {
			continue
		}
		if first {
			fmt.Fprintf(&b, "# HELP %slast_run_phase_seconds %s\n# TYPE %slast_run_phase_seconds gauge\n", p,
				"Duration of each phase of the last run: start (checkpoint), copy (first to last byte read), "+
					"stop (waiting for WAL archiving), upload_tail (stop to the last object stored).", p)
			first = false
		}
		fmt.Fprintf(&b, "%slast_run_phase_seconds{server=%q,phase=%q} %v\n", p, s.ServerName, ph.name, *ph.seconds)
	}
	if s.Phases.CopyRate != nil {
		metric("last_run_copy_read_bytes_per_second", "Bytes read per second during the copy phase of the last run.", *s.Phases.CopyRate)
	}
	if pc := s.PageChecksums; pc != nil {
		checked := 0
		if pc.State == "checked" {
			checked = 1
		}
		metric("last_run_page_checksums_checked", "1 if the last run checked data page checksums, 0 if the cluster has none, --page-checksums is off, or it could not be told.", checked)
		metric("last_run_page_checksum_pages_checked", "Pages whose checksum the last run compared.", pc.PagesChecked)
		metric("last_run_page_checksum_failed_pages", "Pages whose checksum differed in the last run's copy.", pc.FailedPages)
		metric("last_run_page_checksum_failed_files", "Files with a page whose checksum differed in the last run's copy.", pc.FailedFiles)
	}
	return uploaders.WriteFile(path, []byte(b.String()), 0o644)
}
