package pg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadBarmanBackup(t *testing.T) {
	dir := t.TempDir()
	// Our own serialization, which matches Barman's byte for byte.
	info := &BackupInfo{Status: StatusDone, Version: Int64(150018), PGData: "/var/lib/postgresql/15/main",
		Tablespaces: []Tablespace{{"tbs1", 16384, "/srv/tbs1"}, {"o'neil \\ x", 16390, `/srv/"q"`}}}
	raw := info.Marshal()
	os.WriteFile(filepath.Join(dir, "backup.info"), raw, 0o600)
	b, err := LoadBarmanBackup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "DONE" || b.Version != 150018 || b.MajorVersion() != "15" || b.Compression != "" || string(b.Raw) != string(raw) {
		t.Errorf("loaded %+v", b)
	}
	if len(b.Tablespaces) != 2 || b.Tablespaces[1] != info.Tablespaces[1] {
		t.Errorf("tablespaces %+v", b.Tablespaces)
	}
	l, err := b.Begin(context.Background(), &BackupInfo{})
	if err != nil || l.PGData != filepath.Join(dir, "data") || l.Tablespaces[0].Location != filepath.Join(dir, "16384") {
		t.Errorf("layout %+v, %v", l, err)
	}
	if _, err := LoadBarmanBackup(t.TempDir()); err == nil {
		t.Error("a directory without backup.info was accepted")
	}
}
