//go:build integration

package integration

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/conf"
)

// debPackage is the package cmd/mkdeb builds.
const debPackage = "barman-cloud-backup-go"

// TestDeb builds the Debian package with cmd/mkdeb, installs it over
// Debian's barman-cli-cloud, and checks that ours answer under Barman's
// names, with our man pages, Barman's own set aside and the rest of his
// tools untouched; then removes it and checks that Barman's files are
// back, byte for byte, with no diversion left.
func TestDeb(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("installing a package needs root")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("not a Debian system: no dpkg-deb")
	}
	for _, p := range []string{"barman-cli-cloud", "man-db"} {
		if r := runCmd(t, nil, "dpkg-query", "-W", "-f=${Status}", p); r.stdout != "install ok installed" {
			t.Fatalf("%s is not installed (%q): run integration/setup.sh", p, r.stdout)
		}
	}
	if r := runCmd(t, nil, "dpkg-query", "-W", "-f=${Status}", debPackage); strings.HasSuffix(r.stdout, " installed") {
		t.Fatalf("%s is installed already; this test installs and removes it: dpkg -P %s first", debPackage, debPackage)
	}

	barman := []string{
		"/usr/bin/barman-cloud-backup", "/usr/bin/barman-cloud-restore", "/usr/bin/barman-cloud-backup-list",
		"/usr/share/man/man1/barman-cloud-backup.1.gz", "/usr/share/man/man1/barman-cloud-restore.1.gz",
		"/usr/share/man/man1/barman-cloud-backup-list.1.gz",
	}
	before := map[string]string{}
	for _, path := range barman {
		before[path] = debSHA(t, path)
	}

	start := time.Now()
	out := t.TempDir()
	build := exec.Command("go", "run", "./cmd/mkdeb", "-Z", "none", "-o", out)
	build.Dir = ".."
	var stdout, stderr bytes.Buffer
	build.Stdout, build.Stderr = &stdout, &stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go run ./cmd/mkdeb: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(stdout.String())
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("mkdeb printed %q, not the path of a .deb", deb)
	}
	t.Logf("built %s in %v", deb, time.Since(start).Round(time.Second))

	// Whatever fails below, the machine is left with Barman's files.
	t.Cleanup(func() {
		if r := runCmd(t, nil, "dpkg", "--purge", debPackage); r.code != 0 {
			t.Errorf("dpkg --purge %s exited %d: %s", debPackage, r.code, r.stderr)
		}
		// A postrm that failed to undo them leaves Barman's files aside:
		// put them back, and say so.
		for _, line := range strings.Split(runCmd(t, nil, "dpkg-divert", "--list").stdout, "\n") {
			f := strings.Fields(line)
			if len(f) == 7 && f[0] == "diversion" && f[6] == debPackage {
				t.Errorf("purging %s left the %s; removing it", debPackage, line)
				mustRun(t, nil, "dpkg-divert", "--package", debPackage, "--remove", "--rename", "--divert", f[4], f[2])
			}
		}
	})
	mustRun(t, nil, "dpkg", "-i", deb)

	for _, name := range conf.Commands() {
		lines := strings.Split(strings.TrimSpace(mustRun(t, nil, "/usr/bin/"+name, "-V")), "\n")
		if want := name + " (Go implementation) " + conf.Version; len(lines) != 2 || lines[1] != want {
			t.Errorf("/usr/bin/%s -V printed %q; want a second line %q", name, lines, want)
		}
		// man finds our page, as the package installed it.
		page := strings.TrimSpace(mustRun(t, nil, "man", "-w", name))
		var want bytes.Buffer
		if err := conf.Manual(&want, name); err != nil {
			t.Fatal(err)
		}
		if got := debGunzip(t, page); got != want.String() {
			t.Errorf("man -w %s is %s, which is not our page", name, page)
		}
	}
	rendered := mustRun(t, []string{"MANWIDTH=80"}, "man", "-P", "cat", "barman-cloud-backup")
	for _, want := range []string{"Extensions (not in Barman)", "--compression-level", "BARMAN_CLOUD_BACKUP_JOBS"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("man barman-cloud-backup has no %q: it is not our page\n%s", want, rendered)
		}
	}
	if rendered := mustRun(t, []string{"MANWIDTH=80"}, "man", "-P", "cat", "barman-cloud-restore"); !strings.Contains(rendered, "--no-verify") {
		t.Errorf("man barman-cloud-restore has no --no-verify: it is not our page\n%s", rendered)
	}

	// Barman's scripts and pages are set aside, unchanged and usable;
	// his other tools are left where they are.
	for _, name := range []string{"barman-cloud-backup", "barman-cloud-restore"} {
		for path, aside := range map[string]string{
			"/usr/bin/" + name:                      "/usr/bin/" + name + ".barman",
			"/usr/share/man/man1/" + name + ".1.gz": "/usr/share/man/man1/" + name + ".barman.1.gz",
		} {
			if got := strings.TrimSpace(mustRun(t, nil, "dpkg-divert", "--listpackage", path)); got != debPackage {
				t.Errorf("%s is diverted by %q, want %s", path, got, debPackage)
			}
			if got := strings.TrimSpace(mustRun(t, nil, "dpkg-divert", "--truename", path)); got != aside {
				t.Errorf("Barman's %s is diverted to %s, want %s", path, got, aside)
			}
			if debSHA(t, aside) != before[path] {
				t.Errorf("%s is not Barman's %s", aside, path)
			}
		}
		if r := runCmd(t, nil, "/usr/bin/"+name+".barman", "-V"); r.code != 0 || strings.Contains(r.stdout, "Go implementation") {
			t.Errorf("Barman's %s.barman -V exited %d: %s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	for _, path := range []string{"/usr/bin/barman-cloud-backup-list", "/usr/share/man/man1/barman-cloud-backup-list.1.gz"} {
		if debSHA(t, path) != before[path] {
			t.Errorf("installing %s changed %s", debPackage, path)
		}
	}
	if r := runCmd(t, nil, "dpkg", "--verify", "barman-cli-cloud"); r.code != 0 || r.stdout != "" {
		t.Errorf("dpkg --verify barman-cli-cloud with ours installed exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	mustRun(t, nil, "dpkg", "--remove", debPackage)
	mustRun(t, nil, "dpkg", "--purge", debPackage)

	for _, path := range barman {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("Barman's %s is not back after removing %s: %v", path, debPackage, err)
			continue
		}
		if debSHA(t, path) != before[path] {
			t.Errorf("%s is not Barman's again after removing %s", path, debPackage)
		}
		if got := mustRun(t, nil, "dpkg", "-S", path); got != "barman-cli-cloud: "+path+"\n" {
			t.Errorf("dpkg -S %s: %q, want barman-cli-cloud's alone", path, got)
		}
	}
	if first, _, _ := strings.Cut(debRead(t, "/usr/bin/barman-cloud-backup"), "\n"); !strings.HasPrefix(first, "#!") || !strings.Contains(first, "python") {
		t.Errorf("/usr/bin/barman-cloud-backup starts with %q, not a python shebang", first)
	}
	if r := runCmd(t, nil, "dpkg-divert", "--list"); strings.Contains(r.stdout, debPackage) || strings.Contains(r.stdout, ".barman") {
		t.Errorf("diversions left after removing %s:\n%s", debPackage, r.stdout)
	}
	for _, path := range []string{"/usr/bin/barman-cloud-backup.barman", "/usr/bin/barman-cloud-restore.barman",
		"/usr/share/man/man1/barman-cloud-backup.barman.1.gz", "/usr/bin/barman-cloud-backup-verify",
		"/usr/share/man/man1/barman-cloud-backup-verify.1.gz"} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s is left after removing %s (%v)", path, debPackage, err)
		}
	}
	rendered = mustRun(t, []string{"MANWIDTH=80"}, "man", "-P", "cat", "barman-cloud-backup")
	if strings.Contains(rendered, "Extensions (not in Barman)") || !strings.Contains(rendered, "barman-cloud-backup") {
		t.Errorf("man barman-cloud-backup is not Barman's page again:\n%s", rendered)
	}
	if r := runCmd(t, nil, "dpkg", "--verify", "barman-cli-cloud"); r.code != 0 || r.stdout != "" {
		t.Errorf("dpkg --verify barman-cli-cloud after removing ours exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func debRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func debSHA(t *testing.T, path string) string {
	t.Helper()
	return fmt.Sprintf("%x", sha256.Sum256([]byte(debRead(t, path))))
}

func debGunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(data)
}
