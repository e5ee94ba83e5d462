package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// summary is the restore's outcome: the log line, and --json-summary's
// object, shaped as the backup's (status, exit code, times, bytes).
type summary struct {
	BackupID    string  `json:"backup_id"`
	BackupName  string  `json:"backup_name,omitempty"`
	ServerName  string  `json:"server_name"`
	Source      string  `json:"source"`
	RecoveryDir string  `json:"recovery_dir"`
	Status      string  `json:"status"` // DONE or FAILED
	Error       string  `json:"error,omitempty"`
	ExitCode    int     `json:"exit_code"`
	BeginTime   string  `json:"begin_time"`
	EndTime     string  `json:"end_time"`
	Duration    float64 `json:"duration_seconds"`
	Jobs        int     `json:"jobs"`
	// StoredBytes is what was downloaded; TarBytes the tar decompressed
	// from it; Files the regular files written.
	StoredBytes int64 `json:"stored_bytes"`
	TarBytes    int64 `json:"tar_bytes"`
	Files       int64 `json:"files"`
	// Verified is "checked" when every file was checked against
	// backup_manifest, else why not: "absent", "stale", "no-verify".
	Verified string `json:"verified"`
	// Throughput is tar bytes per second over the whole run.
	Throughput      float64               `json:"throughput_bytes_per_second"`
	DownloadSeconds float64               `json:"download_seconds"`
	SyncSeconds     float64               `json:"sync_seconds"`
	Objects         []actors.ObjectReport `json:"objects"`
	Problems        []actors.Problem      `json:"problems"`
}

func newSummary(rc *conf.RestoreConfig, rep *actors.RestoreReport, p *actors.RestoreProgress, start time.Time, err error, code int) *summary {
	end := time.Now()
	s := &summary{BackupID: rc.BackupID, ServerName: rc.ServerName, Source: withoutUserinfo(rc.DestinationURL), RecoveryDir: rc.RecoveryDir,
		Status: "DONE", ExitCode: code, BeginTime: start.Format(time.RFC3339Nano), EndTime: end.Format(time.RFC3339Nano),
		Duration: end.Sub(start).Seconds(), Jobs: rc.Jobs, StoredBytes: p.Downloaded.Load(), TarBytes: p.Extracted.Load(),
		Files: p.Files.Load(), Objects: []actors.ObjectReport{}, Problems: []actors.Problem{}}
	if err != nil {
		s.Status, s.Error = "FAILED", describe(err)
	}
	if rep != nil {
		s.BackupID, s.BackupName, s.Objects, s.Problems, s.Source = rep.BackupID, rep.BackupName, rep.Objects, rep.Problems, rep.Source
		s.DownloadSeconds, s.SyncSeconds, s.Verified = rep.DownloadSeconds, rep.SyncSeconds, rep.Manifest
		if rep.RecoveryDir != "" {
			s.RecoveryDir = rep.RecoveryDir
		}
	}
	if rc.NoVerify {
		s.Verified = "no-verify"
	}
	if s.Duration > 0 {
		s.Throughput = float64(s.TarBytes) / s.Duration
	}
	return s
}

// withoutUserinfo is a URL without the user and password it may carry:
// a summary is read by monitoring, never given secrets.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(raw, "@") {
			return "(unparsable URL)"
		}
		// No user part (an access point's ARN, whose colons net/url
		// reads as a port, has none).
		return raw
	}
	u.User = nil
	return u.String()
}

// line is the summary for humans, one log line.
func (s *summary) line() string {
	name := ""
	if s.BackupName != "" {
		name = fmt.Sprintf(" (%s)", s.BackupName)
	}
	verified := "every file checked against backup_manifest"
	if s.Verified != "checked" {
		verified = "files not verified: backup_manifest " + s.Verified
	}
	return fmt.Sprintf("Summary: backup %s%s restored into %s: %d files, %s of tar from %s stored in %s, %s/s, %s; "+
		"phases: download %s, sync %s",
		s.BackupID, name, s.RecoveryDir, s.Files, conf.PrettySize(s.TarBytes), conf.PrettySize(s.StoredBytes), roundSeconds(s.Duration),
		conf.PrettySize(int64(s.Throughput)), verified, roundSeconds(s.DownloadSeconds), roundSeconds(s.SyncSeconds))
}

// writeJSON writes the summary to path, atomically.
func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return uploaders.WriteFile(path, append(b, '\n'), 0o644)
}

func roundSeconds(secs float64) time.Duration {
	return time.Duration(secs * float64(time.Second)).Round(100 * time.Millisecond)
}
