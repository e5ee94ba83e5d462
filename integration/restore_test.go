//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Our barman-cloud-restore (restoreBinary, never Barman's on PATH) is
// proven beside the tests that restore with Barman's, on their worlds and
// backups: every restore of ours is compared file by file with an
// independent restore of the same backup (Barman 3.4's barman-cloud-restore,
// or GNU tar after the codec's own tool) and started with Barman's
// barman-cloud-wal-restore as restore_command, and must hold the source's
// rows. Damaged copies of a backup must fail it, naming what is damaged,
// without global/pg_control.

// restoreSummary is what the tests read of our restore's --json-summary.
type restoreSummary struct {
	BackupID    string `json:"backup_id"`
	Status      string `json:"status"`
	ExitCode    int    `json:"exit_code"`
	Error       string `json:"error"`
	RecoveryDir string `json:"recovery_dir"`
	Verified    string `json:"verified"`
	Files       int64  `json:"files"`
	Jobs        int    `json:"jobs"`
}

// runRestore runs our barman-cloud-restore with the world's provider
// options, then args (options and the positional arguments).
func (w *world) runRestore(t testing.TB, args ...string) result {
	t.Helper()
	return runCmd(t, w.env, restoreBinary, append(append([]string{}, w.cloud...), args...)...)
}

// ourRestore restores backup id of the world's server with ours: PGDATA
// into dir/data, tablespace tbs1 relocated to dir/tbs1, the summary
// written as JSON. It never fails the test itself.
func (w *world) ourRestore(t testing.TB, id, dir string, args ...string) (result, restoreSummary) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "summary.json")
	r := w.runRestore(t, append(append([]string{}, args...), "--tablespace", "tbs1:"+filepath.Join(dir, "tbs1"),
		"--json-summary", path, w.dest, w.server, id, filepath.Join(dir, "data"))...)
	var s restoreSummary
	if b, err := os.ReadFile(path); err != nil {
		s.Status = fmt.Sprintf("(no summary: %v)", err)
	} else if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("--json-summary: %v\n%s", err, b)
	}
	return r, s
}

// restoreWithOurs restores with ours, which must succeed and say so in
// its summary (status DONE, the backup asked for), pg_tblspc linking to
// the relocated tablespace; it returns the directory holding data/ and
// tbs1/, not started.
func (w *world) restoreWithOurs(t testing.TB, id string, args ...string) (string, restoreSummary) {
	t.Helper()
	dir := postgresDir(t, "bcb-ours-")
	r, s := w.ourRestore(t, id, dir, args...)
	if r.code != 0 {
		t.Fatalf("our barman-cloud-restore %q %s exited %d:\n%s%s", args, id, r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "ERROR") {
		t.Errorf("a restore that succeeded logged an error:\n%s", r.stderr)
	}
	if s.Status != "DONE" || s.ExitCode != 0 || !backupIDPattern.MatchString(s.BackupID) ||
		(backupIDPattern.MatchString(id) && s.BackupID != id) || s.Files < 500 || s.RecoveryDir != filepath.Join(dir, "data") {
		t.Errorf("--json-summary of the restore of %s: %+v", id, s)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "global", "pg_control")); err != nil {
		t.Errorf("restored without pg_control: %v", err)
	}
	links, _ := os.ReadDir(filepath.Join(dir, "data", "pg_tblspc"))
	if len(links) != 1 {
		t.Fatalf("pg_tblspc holds %v, want the link of tbs1", links)
	}
	if target, err := os.Readlink(filepath.Join(dir, "data", "pg_tblspc", links[0].Name())); err != nil || target != filepath.Join(dir, "tbs1") {
		t.Errorf("pg_tblspc/%s -> %q (%v), want %s", links[0].Name(), target, err, filepath.Join(dir, "tbs1"))
	}
	return dir, s
}

// treeOf describes a restore in dir, data/ and tbs1/: the type and
// permissions of every entry, the size, modification time (seconds) and
// SHA-256 of every file, the target of every symbolic link with dir
// spelled $DIR. The two roots are left out: the archives do not carry
// them, their modes are the restoring tool's.
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	for _, root := range []string{"data", "tbs1"} {
		err := filepath.WalkDir(filepath.Join(dir, root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == root {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				tree[rel] = "link -> " + strings.Replace(target, dir, "$DIR", 1)
			case d.IsDir():
				tree[rel] = fmt.Sprintf("dir %v", fi.Mode())
			case d.Type().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				tree[rel] = fmt.Sprintf("file %v %d bytes mtime %d sha256 %x", fi.Mode(), len(b), fi.ModTime().Unix(), sha256.Sum256(b))
			default:
				tree[rel] = fmt.Sprintf("other %v", fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatalf("reading the restore in %s: %v", dir, err)
		}
	}
	return tree
}

// treeDiff lists how tree got differs from tree want (treeOf's or
// volumeTree's), sorted: entries missing, differing, or extra.
func treeDiff(want, got map[string]string) []string {
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, p+": missing")
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: extra (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// sameTree asserts that two restores of one backup wrote the same
// files, with the same contents, permissions and times, and the same
// links.
func sameTree(t testing.TB, what string, a, b string) {
	t.Helper()
	ta, tb := treeOf(t, a), treeOf(t, b)
	// The first restore is the one the second is held to.
	if diffs := treeDiff(ta, tb); len(diffs) > 0 {
		t.Errorf("%s: %d of %d entries differ:\n%s", what, len(diffs), len(ta), strings.Join(diffs[:min(len(diffs), 15)], "\n"))
	} else if len(ta) < 500 || ta["data/PG_VERSION"] == "" || ta["data/global/pg_control"] == "" {
		t.Errorf("%s: the same, but too little to be a restore: %d entries", what, len(ta))
	}
}

// startRestored starts the cluster restored in dir (data/, tbs1/),
// recovering with Barman's barman-cloud-wal-restore to the archive's end.
func (w *world) startRestored(t testing.TB, dir string) *Cluster {
	t.Helper()
	return StartRestoredBin(t, w.src.Bin, dir, w.restoreCommand(), w.env)
}

// noControl asserts a failed restore left no global/pg_control, the file
// without which PostgreSQL refuses to start a data directory.
func noControl(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "data", "global", "pg_control")); err == nil || !os.IsNotExist(err) {
		t.Errorf("a failed restore left global/pg_control (%v)", err)
	}
}

// errorLines are the ERROR lines of a run's log.
func errorLines(log string) []string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "ERROR") {
			lines = append(lines, l)
		}
	}
	return lines
}

// cannotStart asserts PostgreSQL refuses to start what a failed restore
// left in dir/data, for want of global/pg_control.
func cannotStart(t *testing.T, bin, dir string) {
	t.Helper()
	c := &Cluster{Dir: dir, Data: filepath.Join(dir, "data"), Bin: bin}
	chownPostgres(t, dir)
	os.Chmod(c.Data, 0o700)
	port := freePort(t)
	r := runCmd(t, nil, "runuser", "-u", "postgres", "--", c.program("pg_ctl"), "-D", c.Data, "-l", filepath.Join(dir, "server.log"),
		"-w", "-t", "60", "-o", fmt.Sprintf("-p %d -k %s", port, dir), "start")
	if r.code == 0 {
		t.Cleanup(func() {
			runCmd(t, nil, "runuser", "-u", "postgres", "--", c.program("pg_ctl"), "-D", c.Data, "-m", "immediate", "-w", "stop")
		})
		t.Fatalf("PostgreSQL started a failed restore:\n%s", c.Log())
	}
	if !strings.Contains(c.Log(), "global/pg_control") {
		t.Errorf("pg_ctl start exited %d, but not for want of pg_control:\n%s%s\n%s", r.code, r.stdout, r.stderr, c.Log())
	}
}

// largestMember finds the regular file with the most data in a tar
// archive: its name and where its data starts and ends.
func largestMember(t *testing.T, archive []byte) (string, int, int) {
	t.Helper()
	r := bytes.NewReader(archive)
	tr := tar.NewReader(r)
	name, start, size := "", 0, int64(0)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Go's reader has read the header blocks, and no further.
		if h.Typeflag == tar.TypeReg && h.Size > size {
			name, start, size = strings.TrimPrefix(h.Name, "./"), len(archive)-r.Len(), h.Size
		}
	}
	if name == "" {
		t.Fatal("no file in the archive")
	}
	return name, start, start + int(size)
}

// testRestoreDamage restores copies of two backups, one gzip and one
// uncompressed, both split (-S), each copy damaged one way: every restore
// must exit 1 with one ERROR line naming the damaged object or file, say
// FAILED in its summary, and leave no global/pg_control.
func testRestoreDamage(t *testing.T, w *world, m *MinIO, bucket, gz, plain string) {
	volumes := func(id, ext string) []string {
		var data []string
		for _, n := range w.names(t, id) {
			if strings.HasPrefix(n, "data") && strings.HasSuffix(n, ".tar"+ext) {
				data = append(data, n)
			}
		}
		sort.Strings(data)
		if len(data) < 3 || data[0] != "data.tar"+ext {
			t.Fatalf("backup %s: want a data archive in three volumes or more: %v", id, data)
		}
		return data
	}
	gzVolumes := volumes(gz, ".gz")
	lastGz := gzVolumes[len(gzVolumes)-1]
	var member string // the file the flipped byte of an uncompressed volume lands in
	for _, c := range []struct {
		name, id string
		damage   func(t *testing.T, pfx string)
		want     func() string
		// started tries to start what the restore left.
		started bool
	}{
		{name: "flipped-byte-gzip", id: gz, damage: func(t *testing.T, pfx string) {
			b := m.Get(t, bucket, pfx+"data_0001.tar.gz")
			b[len(b)/2] ^= 0x10
			putObject(t, m, bucket, pfx+"data_0001.tar.gz", b)
		}, want: func() string { return "Restore failed: data_0001.tar.gz: corrupt" }},
		{name: "flipped-byte-uncompressed", id: plain, damage: func(t *testing.T, pfx string) {
			// No codec checks an uncompressed volume: the byte flipped in
			// a file's data is found by its CRC-32C in backup_manifest,
			// after the file was written.
			volumes(plain, "")
			b := m.Get(t, bucket, pfx+"data_0001.tar")
			var start, end int
			member, start, end = largestMember(t, b)
			b[(start+end)/2] ^= 0x01
			putObject(t, m, bucket, pfx+"data_0001.tar", b)
		}, want: func() string { return "Restore failed: data_0001.tar: " + member + ": checksum mismatch: CRC32C " }, started: true},
		{name: "missing-volume", id: gz, damage: func(t *testing.T, pfx string) {
			removeObject(t, m, bucket, pfx+"data_0001.tar.gz")
		}, want: func() string { return "Restore failed: data_0001.tar: missing: volume 1 of the archive of PGDATA" }},
		{name: "missing-last-volume", id: gz, damage: func(t *testing.T, pfx string) {
			// Nothing tells the last volume is missing but the end of the
			// data archive, backup_label and backup_manifest, it held.
			removeObject(t, m, bucket, pfx+lastGz)
		}, want: func() string { return "Restore failed: data: backup_label: missing from the data archive" }, started: true},
		{name: "truncated", id: gz, damage: func(t *testing.T, pfx string) {
			b := m.Get(t, bucket, pfx+"16384.tar.gz")
			putObject(t, m, bucket, pfx+"16384.tar.gz", b[:len(b)*2/3])
		}, want: func() string { return "Restore failed: 16384.tar.gz: truncated" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dw := *w
			dw.server = "rdmg-" + c.name
			pfx := w.prefix + "/" + dw.server + "/base/" + c.id + "/"
			copyBackup(t, m, bucket, w.basePrefix(c.id), pfx)
			c.damage(t, pfx)
			want := c.want()
			dir := postgresDir(t, "bcb-ours-damaged-")
			r, s := dw.ourRestore(t, c.id, dir)
			errs := errorLines(r.stderr)
			if r.code != 1 || len(errs) != 1 || !strings.Contains(errs[0], want) {
				t.Errorf("exit %d, want 1 and one ERROR line with %q:\n%s", r.code, want, r.stderr)
			}
			if s.Status != "FAILED" || s.ExitCode != 1 || !strings.Contains(s.Error, want) || s.BackupID != c.id {
				t.Errorf("--json-summary: %+v", s)
			}
			noControl(t, dir)
			if c.started {
				if entries, _ := os.ReadDir(filepath.Join(dir, "data")); len(entries) < 5 {
					t.Errorf("the restore stopped before it wrote the files: the case does not show pg_control is written last (%d entries)", len(entries))
				}
				cannotStart(t, w.src.Bin, dir)
			}
			t.Logf("%s", strings.TrimSpace(r.stderr))
		})
	}
}

// testRestoreChoices restores with ours by the other names of a backup
// (auto with a recovery target: each picks a backup neither the oldest
// nor the newest), and into destinations that are not empty, which it
// refuses as Barman does, touching nothing. byTime and byLSN are backups
// of the world's server taken one after the other, with newer ones after.
func testRestoreChoices(t *testing.T, w *world, byTime, byLSN string) {
	t.Run("auto-target-time", func(t *testing.T) {
		end := infoValue(w.store.Get(t, w.basePrefix(byTime)+"backup.info"), "end_time")
		if end == "" {
			t.Fatalf("backup %s has no end_time", byTime)
		}
		_, s := w.restoreWithOurs(t, "auto", "--target-time", end)
		if s.BackupID != byTime {
			t.Errorf("auto --target-time %q restored %s, want %s", end, s.BackupID, byTime)
		}
	})
	t.Run("auto-target-lsn", func(t *testing.T) {
		end := infoValue(w.store.Get(t, w.basePrefix(byLSN)+"backup.info"), "end_xlog")
		_, s := w.restoreWithOurs(t, "auto", "--target-lsn", end, "-J", "1")
		if s.BackupID != byLSN || s.Jobs != 1 {
			t.Errorf("auto --target-lsn %s restored %s with %d jobs, want %s with 1", end, s.BackupID, s.Jobs, byLSN)
		}
	})
	t.Run("no-such-backup", func(t *testing.T) {
		// Barman's exit codes and words: 1 for a backup ID that is not
		// there, 4 for a name no backup has (which Barman's catch-all
		// words "Barman cloud restore exception: ", then the message: the
		// message is asked for here).
		for _, c := range []struct {
			id   string
			code int
		}{{"20000101T000000", 1}, {"no-such-name", 4}} {
			dir := filepath.Join(t.TempDir(), "data")
			ours := w.runRestore(t, w.dest, w.server, c.id, dir)
			barman := runCmd(t, w.env, "barman-cloud-restore", append(append([]string{}, w.cloud...), w.dest, w.server, c.id, dir)...)
			_, want, _ := strings.Cut(strings.TrimSpace(barman.stderr), "ERROR: ")
			want = strings.TrimPrefix(want, "Barman cloud restore exception: ")
			errs := errorLines(ours.stderr)
			if barman.code != c.code || want == "" {
				t.Fatalf("Barman's barman-cloud-restore of %s exited %d:\n%s", c.id, barman.code, barman.stderr)
			}
			if ours.code != c.code || len(errs) != 1 || !strings.HasSuffix(errs[0], want) {
				t.Errorf("backup %s: exit %d, want %d and one ERROR line ending as Barman's %q:\n%s", c.id, ours.code, c.code, want, ours.stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("backup %s: the recovery directory was made (%v)", c.id, err)
			}
		}
	})
	t.Run("not-empty", func(t *testing.T) {
		dir := postgresDir(t, "bcb-ours-not-empty-")
		data := filepath.Join(dir, "data")
		os.MkdirAll(data, 0o700)
		os.WriteFile(filepath.Join(data, "keep"), []byte("mine"), 0o600)
		r, s := w.ourRestore(t, "latest", dir)
		want := "Destination " + data + " already exists and it is not empty"
		if errs := errorLines(r.stderr); r.code != 1 || len(errs) != 1 || !strings.Contains(errs[0], want) {
			t.Errorf("exit %d, want 1 and one ERROR line with %q:\n%s", r.code, want, r.stderr)
		}
		if s.Status != "FAILED" || s.ExitCode != 1 {
			t.Errorf("--json-summary: %+v", s)
		}
		entries, _ := os.ReadDir(data)
		if b, _ := os.ReadFile(filepath.Join(data, "keep")); len(entries) != 1 || string(b) != "mine" {
			t.Errorf("the destination was changed: %v, keep holds %q", entries, b)
		}
		if _, err := os.Lstat(filepath.Join(dir, "tbs1")); !os.IsNotExist(err) {
			t.Errorf("the tablespace's directory was made: %v", err)
		}
	})
	t.Run("tablespace-not-empty", func(t *testing.T) {
		// Without --tablespace, tbs1 goes back where it was: the source's,
		// in use.
		dir := postgresDir(t, "bcb-ours-not-empty-")
		data := filepath.Join(dir, "data")
		r := w.runRestore(t, w.dest, w.server, "latest", data)
		want := "Destination " + w.tbsDir + " already exists and it is not empty"
		if errs := errorLines(r.stderr); r.code != 1 || len(errs) != 1 || !strings.Contains(errs[0], want) {
			t.Errorf("exit %d, want 1 and one ERROR line with %q:\n%s", r.code, want, r.stderr)
		}
		if entries, _ := os.ReadDir(data); len(entries) != 0 {
			t.Errorf("the restore wrote %v", entries)
		}
		w.src.Fingerprint(t)
	})
}
