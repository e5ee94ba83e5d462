package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bcb.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// example.toml must load, set every key, and say the defaults.
func TestExampleTOML(t *testing.T) {
	cfg := Defaults()
	if err := LoadFile("../example.toml", &cfg); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.DestinationURL, want.ServerName = "s3://backups/prod", "pg-main"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example.toml gives\n%+v\nwant the defaults\n%+v", cfg, want)
	}
	var doc map[string]any
	md, err := toml.DecodeFile("../example.toml", &doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range fileKeys() {
		if !md.IsDefined(strings.Split(k.key, ".")...) {
			t.Errorf("example.toml does not document %s", k.key)
		}
	}
}

func TestPrecedence(t *testing.T) {
	path := writeFile(t, `destination_url = "s3://file/p"
server_name = "from-file"
jobs = 3
compression = "gzip"
max_archive_size = 1048576
[postgres]
host = "file-host"
port = 5433
[tags]
team = "file"
`)
	t.Setenv(EnvConfig, path)
	t.Setenv("BARMAN_CLOUD_BACKUP_JOBS", "5")
	t.Setenv("BARMAN_CLOUD_BACKUP_POSTGRES_USER", "env-user")
	cfg, action, err := Load([]string{"-J", "7", "--tags", "team,flag"})
	if err != nil || action != ActionRun {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want any }{
		"jobs (flag wins)":            {cfg.Jobs, 7},
		"user (env wins over file)":   {cfg.User, "env-user"},
		"host (file over default)":    {cfg.Host, "file-host"},
		"port (integer in the file)":  {cfg.Port, "5433"},
		"compression":                 {cfg.Compression, "gz"},
		"size in bytes":               {cfg.MaxArchiveSize, int64(1 << 20)},
		"positionals from the file":   {cfg.DestinationURL + " " + cfg.ServerName, "s3://file/p from-file"},
		"tags (flag replaces file's)": {cfg.Tags, [][2]string{{"team", "flag"}}},
		"config file recorded":        {cfg.ConfigFile, path},
		"dbname (default)":            {cfg.DBName, "postgres"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", name, c.got, c.want)
		}
	}
	cfg, _, err = Load([]string{"--config", path, "s3://flag/p", "flag-srv"})
	if err != nil || cfg.DestinationURL != "s3://flag/p" || cfg.ServerName != "flag-srv" || cfg.Jobs != 5 {
		t.Errorf("flags over file: %+v, %v", cfg, err)
	}
}

func TestFileErrors(t *testing.T) {
	for _, c := range []struct{ text, msg string }{
		{"jobz = 2\n", `:1: unknown key "jobz"`},
		{"# c\n[postgres]\nhots = \"x\"\n", `:3: unknown key "postgres.hots"`},
		{"jobs = \"four\"\n", `:1: key "jobs": want an integer, found a string`},
		{"\n\njobs = 0\n", `:3: key "jobs": '0' is not a valid positive integer`},
		{"max_archive_size = \"10XB\"\n", `:1: key "max_archive_size": '10XB' is not a valid size string`},
		{"compression = \"zip\"\n", `:1: key "compression": invalid choice: 'zip'`},
		{"page_checksums = \"never\"\n", `:1: key "page_checksums": invalid choice: 'never'`},
		{"[s3]\nencryption = \"DES\"\n", `:2: key "s3.encryption": invalid choice: 'DES'`},
		{"immediate_checkpoint = \"yes\"\n", `want true or false, found a string`},
		{"name = \"latest\"\n", `Backup name 'latest' is not allowed: reserved word`},
		{"[tags]\nteam = 1\n", `tag "team": want a string, found an integer`},
		{"jobs = \n", `:1:`},
		{"[unknown]\nx = 1\n", `unknown key "unknown`},
	} {
		path := writeFile(t, c.text)
		cfg := Defaults()
		err := LoadFile(path, &cfg)
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, c.msg) || !strings.HasPrefix(fe.Msg, path) {
			t.Errorf("%q: got %v, want %q after the path", c.text, err, c.msg)
		}
	}
	t.Setenv("BARMAN_CLOUD_BACKUP_JOBS", "-1")
	cfg := Defaults()
	if err := LoadEnv(&cfg); err == nil || !strings.Contains(err.Error(), "BARMAN_CLOUD_BACKUP_JOBS") {
		t.Errorf("bad environment value: %v", err)
	}
	if _, _, err := Load([]string{"--config", "/nonexistent.toml", "s3://b/p", "s"}); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestPrintedConfigLoadsBack(t *testing.T) {
	cfg, _, err := Load([]string{"-z", "-J", "4", "-d", "host=db password=hunter2 dbname=x", "--tags", "a,b", "-e", "AES256", "s3://b/p", "srv"})
	if err != nil {
		t.Fatal(err)
	}
	text := cfg.TOML()
	if strings.Contains(text, "hunter2") {
		t.Errorf("password printed:\n%s", text)
	}
	again := Defaults()
	if err := LoadFile(writeFile(t, text), &again); err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, text)
	}
	if again.Jobs != 4 || again.Compression != "gz" || again.Encryption != "AES256" || len(again.Tags) != 1 {
		t.Errorf("reloaded %+v", again)
	}
}

func TestMaskPassword(t *testing.T) {
	for in, want := range map[string]string{
		"host=x password=s3cret user=y":  "host=x password=xxxxx user=y",
		"password = 'a b\\' c' dbname=z": "password = xxxxx dbname=z",
		"postgresql://u:s3cret@host/db":  "postgresql://u:xxxxx@host/db",
		"dbname=postgres":                "dbname=postgres",
	} {
		if got := MaskPassword(in); got != want {
			t.Errorf("MaskPassword(%q) = %q, want %q", in, got, want)
		}
	}
}
