//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real Barman server runs our binary as its post_backup_retry_script;
// Barman's own tools then restore the uploaded backup into a cluster that
// starts with the source's data.
func TestBarmanHook(t *testing.T) {
	m := StartMinIO(t, "hooked")
	w := &world{store: minioBucket{m, "hooked"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://hooked/pfx", prefix: "pfx", server: "pg", initdb: []string{"--data-checksums"}}
	// WAL goes to the cloud with barman-cloud-wal-archive, base backups
	// through Barman and our hook: the layout of a real deployment.
	w.startSource(t, nil)

	home := t.TempDir()
	// The hook reaches MinIO through a proxy that passes everything but
	// in the retry-after-partial-failure case.
	p := StartFaultProxy(t, m.Endpoint)
	hook := fmt.Sprintf("%s -z --endpoint-url %s %s ${BARMAN_SERVER}", binary, p.Endpoint, w.dest)
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
	// cron starts receive-wal in the background, on a slot that reserves
	// no WAL until it is used: a switch before it streams closes a
	// segment it never receives, and switch-wal --archive waits for it in
	// vain. So the switch waits for the stream.
	for deadline := time.Now().Add(90 * time.Second); w.src.Query(t,
		"SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming'") == "0"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Barman's receive-wal did not start streaming within 90 s")
		}
	}
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
	// Ours restores Barman's pg_basebackup backup, checked against the
	// backup_manifest pg_basebackup wrote: the same files as Barman's
	// restore, and both start.
	barmanDir := w.barmanRestore(t, id)
	ours, s := w.restoreWithOurs(t, id)
	if s.Verified != "checked" {
		t.Errorf("our restore did not check pg_basebackup's manifest: %+v", s)
	}
	sameTree(t, "Barman's restore, then ours", barmanDir, ours)
	w.checkRestored(t, w.startRestored(t, barmanDir))
	w.checkRestored(t, w.startRestored(t, ours))
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
		// and GNU tar instead, and compare with ours, which recovers with
		// Barman's WAL restore.
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
		// Ours reads the newer backup.info: the same files, and it starts.
		ours, _ := w.restoreWithOurs(t, "20200202T000000")
		sameTree(t, "gzip(1) and GNU tar, then our restore", restoreDir, ours)
		w.change(t, 41)
		w.checkRestored(t, w.startRestored(t, ours))
	})

	t.Run("damaged-page", func(t *testing.T) {
		// A page damaged in Barman's copy: the copy's own pg_control says
		// the cluster has checksums, so the hook checks them, and with
		// --page-checksums fail it stops Barman's retries (63), since the
		// copy on disk stays as it is.
		copied := filepath.Join(t.TempDir(), "20200404T000000")
		mustRun(t, nil, "cp", "-a", dir, copied)
		items := filepath.Join(copied, "data", w.src.Query(t, "SELECT pg_relation_filepath('items')"))
		f, err := os.OpenFile(items, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := []byte{0}
		f.ReadAt(b, 2*8192+6000)
		f.WriteAt([]byte{b[0] ^ 0xff}, 2*8192+6000)
		f.Close()
		env := append(append([]string{}, w.env...), "BARMAN_HOOK=backup_retry_script", "BARMAN_PHASE=post",
			"BARMAN_BACKUP_DIR="+copied, "BARMAN_BACKUP_ID=20200404T000000", "BARMAN_STATUS=DONE", "BARMAN_SERVER=pg")
		r := runCmd(t, env, binary, append(append([]string{}, w.cloud...), "--page-checksums", "fail", w.dest, "pg")...)
		want := fmt.Sprintf("checksum verification failure during base backup: 1 page in 1 file, the first in file %q, block 2", items)
		if r.code != 63 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, want 63 with %q:\n%s", r.code, want, r.stderr)
		}
		if keys := w.store.Keys(t, w.basePrefix("20200404T000000")+"backup.info"); len(keys) != 0 {
			t.Errorf("a backup.info was stored: %v", keys)
		}
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

	t.Run("retry-after-partial-failure", func(t *testing.T) {
		// Barman reruns a post_backup_retry_script with the same backup ID
		// until it exits 0, 62 or 63 (barman/hooks.py): a first attempt
		// whose data archive the store refuses for good, after the
		// tablespace's archive was stored, must not block every rerun;
		// the rerun clears what it left and uploads the backup.
		refused := false
		p.SetRule(func(r *http.Request) Fault {
			if !refused && IsPart(r) && strings.Contains(r.URL.Path, "/data.tar") {
				refused = true
				return Forbidden
			}
			return Pass
		})
		defer p.SetRule(func(*http.Request) Fault { return Pass })
		start := time.Now()
		// Without convergence Barman retries for ever: bounded here, so
		// that an older build fails instead of hanging. An immediate
		// checkpoint, or pg_basebackup waits for a spread one, minutes.
		r, finished := runWithin(t, 3*time.Minute, w.env, "barman", "-c", conf, "backup", "--immediate-checkpoint",
			"--wait", "--wait-timeout", "120", "pg")
		log, _ := os.ReadFile(filepath.Join(home, "barman.log"))
		if !finished || r.code != 0 {
			t.Fatalf("barman backup finished %v, exit %d after %s\n%s\nbarman log:\n%s", finished, r.code,
				time.Since(start).Round(time.Second), r.stderr, tail(string(log), 30))
		}
		if p.Seen(Forbidden) != 1 {
			t.Fatalf("the first attempt did not fail: %s", p)
		}
		if !strings.Contains(string(log), "returned 1") {
			t.Errorf("Barman did not see a failed attempt:\n%s", tail(string(log), 30))
		}
		dirs, _ := filepath.Glob(filepath.Join(home, "home", "pg", "base", "*"))
		var retried string
		for _, d := range dirs {
			if d != dir {
				retried = d
			}
		}
		if len(dirs) != 2 {
			t.Fatalf("Barman backups: %v", dirs)
		}
		id := filepath.Base(retried)
		if names := w.names(t, id); strings.Join(names, " ") != "16384.tar.gz backup.info data.tar.gz" {
			t.Fatalf("uploaded %v", names)
		}
		local, _ := os.ReadFile(filepath.Join(retried, "backup.info"))
		if got := w.store.Get(t, w.basePrefix(id)+"backup.info"); string(got) != string(local) || !strings.Contains(string(got), "status=DONE") {
			t.Errorf("backup.info in the store:\n%s\nlocal:\n%s", got, local)
		}
		// What the failed attempt stored was removed by the rerun.
		cleared := 0
		for _, req := range p.Requests() {
			if req.Method == http.MethodDelete && strings.Contains(req.Path, "/base/"+id+"/") {
				cleared++
			}
		}
		if cleared == 0 {
			t.Errorf("the rerun removed nothing: the first attempt left no object, the case is not exercised")
		}
		if left := incomplete(t, m, "hooked"); len(left) > 0 {
			t.Errorf("multipart uploads left open: %v", left)
		}
		if keys := w.store.Keys(t, "pfx/pg/base/"+id+".lock"); len(keys) != 0 {
			t.Errorf("lock left behind: %v", keys)
		}
		t.Logf("barman backup with one failed hook attempt took %s", time.Since(start).Round(time.Second))
		w.change(t, 42)
		w.checkRestored(t, w.restoreWithBarman(t, id))
	})
}

// runWithin runs a command for at most d: finished is false when it had
// to be killed, with every process it started.
func runWithin(t *testing.T, d time.Duration, env []string, name string, args ...string) (r result, finished bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r = result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r, ctx.Err() == nil
}
