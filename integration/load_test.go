//go:build integration

package integration

import (
	"fmt"
	"os/exec"
	"testing"
)

// A backup taken while pgbench writes: the restored cluster recovers and
// keeps pgbench's invariants (every account there, and the balances of
// accounts, tellers and branches all equal the sum of history's deltas).
func TestBackupUnderWriteLoad(t *testing.T) {
	w, _ := newS3World(t)
	port := fmt.Sprint(w.src.Port)
	mustRun(t, nil, pgBin("pgbench"), "-i", "-q", "-s", "5", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	load := exec.Command(pgBin("pgbench"), "-c", "4", "-j", "2", "-T", "20", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "postgres")
	out := make(chan []byte, 1)
	go func() { b, _ := load.CombinedOutput(); out <- b }()
	id := w.backup(t, "-z", "-S", "8MB", "-J", "3")
	if o := <-out; load.ProcessState == nil || !load.ProcessState.Success() {
		t.Fatalf("pgbench failed:\n%s", o)
	}
	if n := w.src.Query(t, "SELECT count(*)::text FROM pgbench_history"); n == "0" {
		t.Fatal("pgbench wrote nothing: the test proves nothing")
	}
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
