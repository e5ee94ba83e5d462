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
	b, err := LoadBarmanBackup(dir, "")
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
	if _, err := LoadBarmanBackup(t.TempDir(), ""); err == nil {
		t.Error("a directory without backup.info was accepted")
	}
}

// A Barman server from 3.13.2 on keeps backup.info at
// SERVER/meta/ID-backup.info, with keys Barman 3.4 did not have, and
// none in the backup directory.
func TestLoadBarmanBackupMetaLayout(t *testing.T) {
	server := t.TempDir()
	dir := filepath.Join(server, "base", "20261124T140715")
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	os.MkdirAll(filepath.Join(server, "meta"), 0o700)
	info := "backup_id=20261124T140715\nbackup_type=full\nchildren_backup_ids=None\ncluster_size=31205376\n" +
		"compression=None\ndata_checksums=off\nencryption=None\nparent_backup_id=None\npgdata=/srv/pg\n" +
		"status=DONE\nsummarize_wal=off\ntablespaces=[('tbs1', 16384, '/srv/tbs1')]\nversion=170002\n"
	path := filepath.Join(server, "meta", "20261124T140715-backup.info")
	os.WriteFile(path, []byte(info), 0o600)
	if _, err := LoadBarmanBackup(dir, ""); err == nil {
		t.Fatal("found a backup.info in the backup directory, where there is none")
	}
	b, err := LoadBarmanBackup(dir, path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Raw) != info || b.MajorVersion() != "17" || b.Status != "DONE" || len(b.Tablespaces) != 1 {
		t.Errorf("loaded %+v", b)
	}
	l, err := b.Begin(context.Background(), &BackupInfo{})
	if err != nil || l.PGData != filepath.Join(dir, "data") || l.Tablespaces[0].Location != filepath.Join(dir, "16384") {
		t.Errorf("layout %+v, %v", l, err)
	}
}
