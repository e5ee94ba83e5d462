//go:build integration

package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every supported PostgreSQL major is backed up by our binary and
// restored by Barman 3.4's barman-cloud-restore and by ours into the same
// files, recovering from the WAL barman-cloud-wal-archive shipped: 13 and
// 14 take the pre-15 backup functions (pg_start_backup, pg_stop_backup),
// 18 has data checksums on by default (Fingerprint reads every page, so
// each is verified). The majors share one MinIO, each under its own
// server name.
func TestPostgresMajors(t *testing.T) {
	m := StartMinIO(t, "backups")
	times := map[int]time.Duration{}
	for _, major := range PGMajors {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			start := time.Now()
			w := &world{store: minioBucket{m, "backups"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
				dest: "s3://backups/majors", prefix: "majors", server: fmt.Sprintf("pg%d", major), bin: PGBin(t, major)}
			w.startSource(t, nil)
			version := w.src.Query(t, "SHOW server_version_num")
			if !strings.HasPrefix(version, fmt.Sprint(major)) {
				t.Fatalf("PostgreSQL %d's cluster reports version %s", major, version)
			}
			// The server name is new: its first backup is the only one listed.
			if r := w.run(t, "-z"); r.code != 0 {
				t.Fatalf("backup exited %d:\n%s", r.code, r.stderr)
			}
			ids := w.ids(t)
			if len(ids) != 1 {
				t.Fatalf("backups listed: %v", ids)
			}
			id := ids[0]
			info := string(w.store.Get(t, w.basePrefix(id)+"backup.info"))
			for _, want := range []string{"status=DONE\n", "version=" + version + "\n", "tablespaces=[('tbs1', ",
				backupFrom(major, "primary"), "LABEL: Barman backup cloud " + id} {
				if !strings.Contains(info, want) {
					t.Errorf("backup.info lacks %q:\n%s", want, info)
				}
			}
			show := mustRun(t, w.env, "barman-cloud-backup-show", append(w.cloud, w.dest, w.server, id)...)
			if want := fmt.Sprintf("PostgreSQL Version     : %d", major); !strings.Contains(show, want) {
				t.Errorf("barman-cloud-backup-show lacks %q:\n%s", want, show)
			}
			barmanDir := checkRestoredManifest(t, w, id, major)
			if major < 15 {
				interruptDuringCopy(t, w, m)
			}
			w.change(t, 1)
			// Our restore writes the very files of Barman's (which
			// pg_verifybackup checked above, up to 16): the same names,
			// contents, modes, times and links. Starting one starts both;
			// ours starts.
			ours, _ := w.restoreWithOurs(t, id)
			sameTree(t, "Barman's restore, then ours", barmanDir, ours)
			restored := w.startRestored(t, ours)
			w.checkRestored(t, restored)
			checksums := w.src.Query(t, "SHOW data_checksums")
			if got := restored.Query(t, "SHOW data_checksums"); got != checksums || (major >= 18 && checksums != "on") {
				t.Errorf("data_checksums: restored %s, source %s", got, checksums)
			}
			times[major] = time.Since(start)
		})
	}
	for _, major := range PGMajors {
		if d, ok := times[major]; ok {
			t.Logf("PostgreSQL %d: started, filled, backed up, restored and compared in %.1fs", major, d.Seconds())
		}
	}
}

// backupFrom is backup_label's BACKUP FROM line for a backup taken on a
// primary or a standby: PostgreSQL 13 and older say master for primary.
func backupFrom(major int, role string) string {
	if role == "primary" && major < 14 {
		role = "master"
	}
	return "BACKUP FROM: " + role + `\n`
}

// interruptDuringCopy stops a backup with SIGTERM while its copy is held
// (uploads gated): backup mode must be ended by the call of the server's
// major (pg_stop_backup(false, false) before 15), which the server accepts.
func interruptDuringCopy(t *testing.T, w *world, m *MinIO) {
	t.Helper()
	gate := startUploadGate(t, m.Endpoint)
	waitNextSecond()
	b := startBackground(t, w.env, binary, "-vv", "-J", "1", "--immediate-checkpoint", "--endpoint-url", gate.Endpoint,
		"-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres", w.dest, w.server)
	backupSessionIdle(t, w.src, b, 0.5)
	b.cmd.Process.Signal(syscall.SIGTERM)
	log, code := b.wait(t)
	if code != 1 || !strings.Contains(log, "Backup mode ended without waiting for the WAL archive") {
		t.Errorf("interrupted backup exited %d:\n%s", code, log)
	}
}
