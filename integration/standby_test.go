//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A backup taken from a streaming standby, as CloudNativePG takes them by
// default, asks the standby for nothing only a primary can do (no WAL
// switch, no restore point: its server log, which records every
// statement, shows neither), and restores, recovering from the primary's
// WAL archive, to the primary's rows. With archive_mode = always the
// standby archives to the same destination too, and pg_backup_stop waits
// until it has archived the backup's last segment: that happens once the
// primary moves on to a new segment, which a busy primary does.
func TestStandbyBackup(t *testing.T) {
	w, _ := newS3World(t)
	for i, mode := range []string{"on", "always"} {
		t.Run("archive_mode="+mode, func(t *testing.T) {
			standby := StartStandby(t, w.src, []string{w.tbsDir},
				map[string]string{"archive_mode": mode, "log_statement": "'all'"}, w.env)
			sw := *w
			sw.src = standby
			waitNextSecond()
			before := w.ids(t)
			b := startBackground(t, w.env, binary, append(append([]string{}, w.cloud...), "-v", "--immediate-checkpoint",
				"-h", "127.0.0.1", "-p", fmt.Sprint(standby.Port), "-U", "postgres", w.dest, w.server)...)
			if mode == "always" {
				busyPrimary(t, w.src, b)
			}
			log, code := b.wait(t)
			if code != 0 {
				t.Fatalf("backup from the standby exited %d:\n%s\n%s", code, log, standby.Log())
			}
			var id string
			for _, x := range w.ids(t) {
				if !contains(before, x) {
					id = x
				}
			}
			if id == "" {
				t.Fatalf("no new backup listed:\n%s", log)
			}
			if strings.Contains(log, "WARNING") || !strings.Contains(log, "Backup taken from a standby") {
				t.Errorf("log of the backup from the standby:\n%s", log)
			}
			statements := standby.Log()
			if !strings.Contains(statements, "pg_backup_start(") || !strings.Contains(statements, "pg_backup_stop(") {
				t.Fatalf("the standby's log does not show the backup's statements:\n%s", statements)
			}
			for _, primaryOnly := range []string{"pg_switch_wal", "pg_create_restore_point"} {
				if strings.Contains(statements, primaryOnly) {
					t.Errorf("the standby was asked for %s:\n%s", primaryOnly, statements)
				}
			}
			info := string(w.store.Get(t, w.basePrefix(id)+"backup.info"))
			if !strings.Contains(info, backupFrom(15, "standby")) || !strings.Contains(info, "status=DONE\n") {
				t.Errorf("backup.info:\n%s", info)
			}
			w.change(t, 20+i)
			w.checkRestored(t, sw.restoreWithBarman(t, id))
		})
	}
}

// busyPrimary writes on the primary and switches its WAL once a second
// from the time the backup asks to stop until it ends, as a primary in
// use fills segments: a standby archives a segment only once it has it
// whole.
func busyPrimary(t *testing.T, primary *Cluster, b *background) {
	t.Helper()
	primary.Exec(t, "CREATE TABLE IF NOT EXISTS ticks (at timestamptz)")
	for range 300 {
		if b.exited() {
			return
		}
		if b.saw("Stopping backup") {
			primary.Exec(t, "INSERT INTO ticks VALUES (now())", "SELECT pg_switch_wal()")
		}
		time.Sleep(time.Second)
	}
}
