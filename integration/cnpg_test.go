//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// CloudNativePG's barman-cloud library runs barman-cloud-backup with
// exactly this shape of arguments, the credentials and the server's
// location (PGHOST, a socket directory, and PGPORT) in the environment
// only; it then reads the backup back by name with
// barman-cloud-backup-show --format json, taking begin and end times and
// WAL names from the object under the key "cloud", and parses the times
// as ctime or ISO. Barman 3.4's tools must find the backup by name and
// restore it.
func TestCloudNativePGInvocation(t *testing.T) {
	w, m := newS3World(t)
	env := append(append([]string{}, w.env...), "PGHOST="+w.src.Dir, "PGPORT="+strconv.Itoa(w.src.Port),
		"TMPDIR="+t.TempDir())
	name := "backup-example-" + time.Now().Format("20060102150405")
	waitNextSecond()
	r := runCmd(t, env, binary, "-U", "postgres", "-n", name, "--gzip", "--encryption", "AES256",
		"--immediate-checkpoint", "--jobs", "2", "--tags", "environment,production",
		"--endpoint-url", m.Endpoint, "--cloud-provider", "aws-s3", w.dest, w.server)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}

	show := mustRun(t, w.env, "barman-cloud-backup-show", "--format", "json", "--endpoint-url", m.Endpoint,
		"--cloud-provider", "aws-s3", w.dest, w.server, name)
	var shown struct {
		Cloud struct {
			BackupName string `json:"backup_name"`
			ID         string `json:"backup_id"`
			Status     string `json:"status"`
			BeginTime  string `json:"begin_time"`
			EndTime    string `json:"end_time"`
			BeginWAL   string `json:"begin_wal"`
			EndWAL     string `json:"end_wal"`
			BeginLSN   string `json:"begin_xlog"`
			EndLSN     string `json:"end_xlog"`
			SystemID   string `json:"systemid"`
			Timeline   int    `json:"timeline"`
			Error      string `json:"error"`
		} `json:"cloud"`
	}
	if err := json.Unmarshal([]byte(show), &shown); err != nil {
		t.Fatalf("barman-cloud-backup-show output %q: %v", show, err)
	}
	b := shown.Cloud
	ids := w.ids(t)
	if len(ids) != 1 || b.ID != ids[0] || b.BackupName != name || b.Status != "DONE" || b.Error != "" {
		t.Fatalf("backup %s shown as %+v (listed: %v)", name, b, ids)
	}
	// The operator's layout for Barman's ctime strings.
	begin, err1 := time.Parse("Mon Jan 2 15:04:05 2006", b.BeginTime)
	end, err2 := time.Parse("Mon Jan 2 15:04:05 2006", b.EndTime)
	if err1 != nil || err2 != nil || begin.IsZero() || end.Before(begin) {
		t.Errorf("begin_time %q, end_time %q: %v, %v", b.BeginTime, b.EndTime, err1, err2)
	}
	wal := regexp.MustCompile(`^[0-9A-F]{24}$`)
	lsn := regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`)
	if !wal.MatchString(b.BeginWAL) || !wal.MatchString(b.EndWAL) || b.EndWAL < b.BeginWAL ||
		!lsn.MatchString(b.BeginLSN) || !lsn.MatchString(b.EndLSN) || b.Timeline != 1 {
		t.Errorf("WAL and LSNs shown: %+v", b)
	}
	if want := w.src.Query(t, "SELECT system_identifier::text FROM pg_control_system()"); b.SystemID != want {
		t.Errorf("systemid %s, want %s", b.SystemID, want)
	}

	for _, n := range w.names(t, b.ID) {
		key := w.basePrefix(b.ID) + n
		st, err := m.Client.StatObject(context.Background(), "backups", key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("%s: server-side encryption %q, want AES256", n, got)
		}
		tags, err := m.Client.GetObjectTagging(context.Background(), "backups", key, minio.GetObjectTaggingOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := tags.ToMap(); len(got) != 1 || got["environment"] != "production" {
			t.Errorf("%s: tags %v", n, got)
		}
	}
	w.change(t, 1)
	w.checkRestored(t, w.restoreWithBarman(t, b.ID))
}
