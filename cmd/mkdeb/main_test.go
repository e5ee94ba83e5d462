package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The maintainer scripts divert Barman's files on install and upgrade
// only, and put them back only when ours are gone for good: an upgrade,
// or one that failed, keeps them.
func TestMaintainerScripts(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dpkg-divert"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		script, arg, action string
	}{
		{preinst(), "install", "--add"},
		{preinst(), "upgrade", "--add"},
		{preinst(), "abort-upgrade", ""},
		{postrm(), "remove", "--remove"},
		{postrm(), "abort-install", "--remove"},
		{postrm(), "disappear", "--remove"},
		{postrm(), "purge", ""},
		{postrm(), "upgrade", ""},
		{postrm(), "abort-upgrade", ""},
		{postrm(), "failed-upgrade", ""},
	} {
		os.Remove(log)
		cmd := exec.Command("sh", "-c", c.script, "script", c.arg, "0.1.0")
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", c.arg, err, out)
		}
		data, _ := os.ReadFile(log)
		calls := strings.Split(strings.TrimSpace(string(data)), "\n")
		if c.action == "" {
			if len(data) > 0 {
				t.Errorf("%s: dpkg-divert called: %q", c.arg, calls)
			}
			continue
		}
		if len(calls) != len(diverted) {
			t.Fatalf("%s: dpkg-divert %q, want one call for each of %q", c.arg, calls, diverted)
		}
		for i, path := range diverted {
			want := "--package " + pkg + " " + c.action + " --rename --divert " + divertedTo(path) + " " + path
			if calls[i] != want {
				t.Errorf("%s: dpkg-divert %s, want %s", c.arg, calls[i], want)
			}
		}
	}
}

func TestDivertedTo(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/barman-cloud-backup":                 "/usr/bin/barman-cloud-backup.barman",
		"/usr/share/man/man1/barman-cloud-backup.1.gz": "/usr/share/man/man1/barman-cloud-backup.barman.1.gz",
	} {
		if got := divertedTo(in); got != want {
			t.Errorf("divertedTo(%s) = %s, want %s", in, got, want)
		}
	}
}

// gzipped is gzip -9n: the same bytes every time, no name, no time.
func TestGzipped(t *testing.T) {
	a, b := gzipped([]byte(".TH X 1\n")), gzipped([]byte(".TH X 1\n"))
	if !bytes.Equal(a, b) {
		t.Fatal("two compressions of a page differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(zr)
	if string(data) != ".TH X 1\n" || zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q, time %v, data %q", zr.Name, zr.ModTime, data)
	}
}
