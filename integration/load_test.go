//go:build integration

package integration

import (
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// A backup taken while pgbench writes: the restored cluster recovers and
// keeps pgbench's invariants (every account there, and the balances of
// accounts, tellers and branches all equal the sum of history's deltas).
func TestBackupUnderWriteLoad(t *testing.T) {
	w, _ := newS3World(t)
	port := fmt.Sprint(w.src.Port)
	mustRun(t, nil, pgBin("pgbench"), "-i", "-q", "-s", "5", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	stampHistory(t, w.src)
	load := exec.Command(pgBin("pgbench"), "-c", "4", "-j", "2", "-T", "20", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	out := make(chan []byte, 1)
	go func() { b, _ := load.CombinedOutput(); out <- b }()
	waitForHistory(t, w.src, out)
	id := w.backup(t, "-z", "-S", "8MB", "-J", "3")
	if o := <-out; load.ProcessState == nil || !load.ProcessState.Success() {
		t.Fatalf("pgbench failed:\n%s", o)
	}
	w.checkWrittenDuring(t, id)
	w.src.Archive(t)
	restored := w.restoreWithBarman(t, id)
	invariants := `SELECT (SELECT count(*) FROM pgbench_accounts)::text || ' ' ||
		((SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND
		 (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND
		 (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history))::text`
	if got := restored.Query(t, invariants); got != "500000 true" {
		t.Errorf("restored cluster: %s, want 500000 accounts and balanced sums", got)
	}
	if got, want := restored.Query(t, "SELECT count(*)::text FROM pgbench_history"), w.src.Query(t, "SELECT count(*)::text FROM pgbench_history"); got != want {
		t.Errorf("history rows: restored %s, source %s", got, want)
	}
	w.checkRestored(t, restored)
}

// stampHistory makes each row pgbench adds to pgbench_history carry the
// WAL insert position of its insert: that, unlike a count of rows, tells
// when pgbench wrote, against the backup's start and end positions.
func stampHistory(t *testing.T, c *Cluster) {
	t.Helper()
	c.Exec(t, "ALTER TABLE pgbench_history ADD COLUMN lsn pg_lsn DEFAULT pg_current_wal_insert_lsn()")
}

// waitForHistory waits until pgbench has written a history row, so that
// a backup started next runs under its load; exited gets pgbench's output
// if it ends first.
func waitForHistory(t *testing.T, c *Cluster, exited <-chan []byte) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for c.Query(t, "SELECT count(*)::text FROM pgbench_history") == "0" {
		select {
		case o := <-exited:
			t.Fatalf("pgbench ended before writing:\n%s", o)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("pgbench wrote nothing in 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkWrittenDuring fails the test unless pgbench wrote a history row
// (see stampHistory) at a WAL position strictly between the backup's
// start and end, as backup.info gives them: only then was the backup
// taken under pgbench's writes.
func (w *world) checkWrittenDuring(t *testing.T, id string) {
	t.Helper()
	info := w.store.Get(t, w.basePrefix(id)+"backup.info")
	begin, end := infoValue(info, "begin_xlog"), infoValue(info, "end_xlog")
	if begin == "" || end == "" {
		t.Fatalf("backup.info lacks begin_xlog or end_xlog:\n%s", info)
	}
	during := w.src.Query(t, fmt.Sprintf("SELECT count(*)::text FROM pgbench_history WHERE lsn > '%s' AND lsn < '%s'", begin, end))
	if during == "0" {
		t.Fatalf("pgbench wrote no row between the backup's start (%s) and end (%s): the test proves nothing; rows at %s", begin, end,
			w.src.Query(t, "SELECT coalesce(min(lsn)::text || ' to ' || max(lsn)::text, 'none') FROM pgbench_history"))
	}
	t.Logf("pgbench wrote %s rows between the backup's start (%s) and end (%s)", during, begin, end)
}
