//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExclusionsRoundTrip backs up a cluster whose pg_notify and
// pg_stat_tmp are symbolic links to directories elsewhere (another disk, a
// tmpfs) and whose PGDATA holds an exclusive backup's stale backup_label
// and tablespace_map, restores it with Barman's tools, tablespace
// relocated, and starts it. Without pg_notify the restored server does not
// start (AsyncShmemInit); from a stale tablespace_map it would rebuild
// pg_tblspc with the old location, undoing the relocation.
func TestExclusionsRoundTrip(t *testing.T) {
	w, _ := newS3World(t)
	src := w.src
	asPostgres(t, nil, src.program("pg_ctl"), "-D", src.Data, "-m", "fast", "-w", "stop")
	elsewhere := postgresDir(t, "bcb-elsewhere-")
	for _, dir := range []string{"pg_notify", "pg_stat_tmp"} {
		target := filepath.Join(elsewhere, dir)
		if err := os.Rename(filepath.Join(src.Data, dir), target); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(src.Data, dir)); err != nil {
			t.Fatal(err)
		}
	}
	chownPostgres(t, src.Data)
	src.start(t)
	oid := src.Query(t, "SELECT oid::text FROM pg_tablespace WHERE spcname = 'tbs1'")
	stale := postgresDir(t, "bcb-stale-tbs-")
	for name, content := range map[string]string{
		"backup_label":   "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: exclusive\n",
		"tablespace_map": oid + " " + stale + "\n",
	} {
		if err := os.WriteFile(filepath.Join(src.Data, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	chownPostgres(t, src.Data)

	id := w.backup(t)
	w.change(t, 1)
	restored := w.restoreWithBarman(t, id)
	w.checkRestored(t, restored)
	for _, dir := range []string{"pg_notify", "pg_stat_tmp"} {
		if fi, err := os.Lstat(filepath.Join(restored.Data, dir)); err != nil || !fi.IsDir() {
			t.Errorf("restored %s: %v, %v; want a directory", dir, fi, err)
		}
	}
	link, err := os.Readlink(filepath.Join(restored.Data, "pg_tblspc", oid))
	if err != nil || strings.HasPrefix(link, stale) {
		t.Errorf("restored tablespace link: %q, %v; want the relocated directory", link, err)
	}
	if _, err := os.Stat(filepath.Join(restored.Data, "tablespace_map")); err == nil {
		t.Errorf("tablespace_map in the restored PGDATA")
	}
}
