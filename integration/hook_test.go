//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real Barman server runs our binary as its post_backup_retry_script;
// Barman's own tools then restore the uploaded backup into a cluster that
// starts with the source's data.
func TestBarmanHook(t *testing.T) {
	m := StartMinIO(t, "hooked")
	w := &world{store: minioBucket{m, "hooked"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://hooked/pfx", prefix: "pfx", server: "pg"}
	// WAL goes to the cloud with barman-cloud-wal-archive, base backups
	// through Barman and our hook: the layout of a real deployment.
	w.startSource(t, nil)

	home := t.TempDir()
	hook := fmt.Sprintf("%s -z --endpoint-url %s %s ${BARMAN_SERVER}", binary, m.Endpoint, w.dest)
	conf := filepath.Join(home, "barman.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`[barman]
barman_home = %[1]s/home
barman_user = root
configuration_files_directory = %[1]s/conf.d
log_file = %[1]s/barman.log
log_level = INFO
path_prefix = %[2]s

[pg]
description = "hook test"
conninfo = host=127.0.0.1 port=%[3]d user=postgres dbname=postgres
streaming_conninfo = host=127.0.0.1 port=%[3]d user=postgres
backup_method = postgres
streaming_archiver = on
slot_name = barman
create_slot = auto
post_backup_retry_script = %[4]s
`, home, filepath.Dir(pgBin("pg_basebackup")), w.src.Port, hook)), 0o600)
	os.MkdirAll(filepath.Join(home, "conf.d"), 0o700)
	os.MkdirAll(filepath.Join(home, "home"), 0o700)
	barman := func(args ...string) string {
		t.Helper()
		return mustRun(t, w.env, "barman", append([]string{"-c", conf}, args...)...)
	}
	t.Cleanup(func() { runCmd(t, w.env, "barman", "-c", conf, "receive-wal", "--stop", "pg") })
	barman("cron")
	barman("switch-wal", "--force", "--archive", "--archive-timeout", "120", "pg")
	out := barman("backup", "--wait", "--wait-timeout", "120", "pg")

	dirs, _ := filepath.Glob(filepath.Join(home, "home", "pg", "base", "*"))
	if len(dirs) != 1 {
		t.Fatalf("Barman backups: %v\n%s", dirs, out)
	}
	dir, id := dirs[0], filepath.Base(dirs[0])
	log, _ := os.ReadFile(filepath.Join(home, "barman.log"))
	names := w.names(t, id)
	if strings.Join(names, " ") != "16384.tar.gz backup.info data.tar.gz" {
		t.Fatalf("uploaded %v\nbarman log:\n%s", names, log)
	}
	local, _ := os.ReadFile(filepath.Join(dir, "backup.info"))
	if got := w.store.Get(t, w.basePrefix(id)+"backup.info"); string(got) != string(local) {
		t.Errorf("backup.info was changed on the way:\n%s\nlocal:\n%s", got, local)
	}
	if !contains(w.ids(t), id) {
		t.Errorf("barman-cloud-backup-list does not list %s", id)
	}
	w.change(t, 40)
	w.checkRestored(t, w.restoreWithBarman(t, id))
	checkHookManifests(t, w, "pg", id, dir, func(id string) []string {
		return append(append([]string{}, w.env...), "BARMAN_HOOK=backup_retry_script", "BARMAN_PHASE=post",
			"BARMAN_BACKUP_ID="+id, "BARMAN_STATUS=DONE", "BARMAN_SERVER=pg")
	})

	t.Run("meta-layout", func(t *testing.T) {
		// A Barman server from 3.13.2 on keeps backup.info, with keys
		// Barman 3.4 lacks, at SERVER/meta/ID-backup.info, none in the
		// backup directory, and names it in BARMAN_BACKUP_INFO_PATH.
		meta := filepath.Join(home, "home", "pg", "meta", "20200202T000000-backup.info")
		os.MkdirAll(filepath.Dir(meta), 0o700)
		newer := string(local) + "backup_type=full\ncluster_size=31205376\ndata_checksums=off\nencryption=None\nsummarize_wal=off\n"
		os.WriteFile(meta, []byte(newer), 0o600)
		os.Rename(filepath.Join(dir, "backup.info"), filepath.Join(dir, "backup.info.moved"))
		t.Cleanup(func() { os.Rename(filepath.Join(dir, "backup.info.moved"), filepath.Join(dir, "backup.info")) })
		env := append(append([]string{}, w.env...), "BARMAN_HOOK=backup_retry_script", "BARMAN_PHASE=post",
			"BARMAN_BACKUP_DIR="+dir, "BARMAN_BACKUP_ID=20200202T000000", "BARMAN_STATUS=DONE", "BARMAN_SERVER=pg",
			"BARMAN_BACKUP_INFO_PATH="+meta)
		r := runCmd(t, env, binary, append(append([]string{}, w.cloud...), "-z", w.dest, "pg")...)
		if r.code != 0 {
			t.Fatalf("hook with BARMAN_BACKUP_INFO_PATH exited %d:\n%s", r.code, r.stderr)
		}
		names := w.names(t, "20200202T000000")
		if strings.Join(names, " ") != "16384.tar.gz backup.info data.tar.gz" {
			t.Fatalf("uploaded %v", names)
		}
		if got := w.store.Get(t, w.basePrefix("20200202T000000")+"backup.info"); string(got) != newer {
			t.Errorf("backup.info was changed on the way:\n%s\nmeta:\n%s", got, newer)
		}
		// Barman 3.4's restore refuses the newer keys: unpack with gzip(1)
		// and GNU tar instead, and recover with Barman's WAL restore.
		parts := map[string]func() io.Reader{}
		for _, n := range names {
			key := w.basePrefix("20200202T000000") + n
			parts[n] = func() io.Reader {
				cmd := exec.Command("gzip", "-dc")
				cmd.Stdin = bytes.NewReader(w.store.Get(t, key))
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("gzip -dc %s: %v", n, err)
				}
				return bytes.NewReader(out)
			}
		}
		restoreDir := manualRestore(t, parts, names, "16384")
		w.change(t, 41)
		w.checkRestored(t, StartRestored(t, restoreDir, w.restoreCommand(), w.env))
	})

	hookEnv := func(status string) []string {
		return append(append([]string{}, w.env...), "BARMAN_HOOK=backup_retry_script", "BARMAN_PHASE=post",
			"BARMAN_BACKUP_DIR="+dir, "BARMAN_BACKUP_ID=20200101T000000", "BARMAN_STATUS="+status, "BARMAN_SERVER=pg")
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"failed-backup", hookEnv("FAILED"), nil, 63, "has status 'FAILED' (status should be: DONE)"},
		{"unsupported-phase", append(hookEnv("DONE"), "BARMAN_PHASE=pre"), nil, 4, "called as unsupported hook script: pre_backup_retry_script"},
		{"unsupported-hook", append(hookEnv("DONE"), "BARMAN_HOOK=recovery_script"), nil, 4, "unsupported hook script: post_recovery_script"},
		{"name-in-hook-mode", hookEnv("DONE"), []string{"-n", "nightly"}, 4, "Cannot set backup name when running as a hook script"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append(append([]string{}, w.cloud...), c.args...), w.dest, "pg")
			r := runCmd(t, c.env, binary, args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
				t.Fatalf("exit %d, want %d with %q:\n%s", r.code, c.code, c.msg, r.stderr)
			}
			if keys := w.store.Keys(t, "pfx/pg/base/20200101T000000"); len(keys) != 0 {
				t.Errorf("uploaded %v", keys)
			}
		})
	}
}
