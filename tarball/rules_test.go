package tarball

import (
	"encoding/json"
	"os"
	"testing"
)

// testdata/rules.json holds Barman 3.4's own path_allowed() verdicts for
// the PGDATA and tablespace rule sets.
func TestRulesMatchBarman(t *testing.T) {
	raw, err := os.ReadFile("testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string][][3]any
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	sets := map[string]*Rules{
		"pgdata":     NewRules(nil, append(append(append([]string{}, PGDataExcludes...), GlobalExcludes...), "/pg_tblspc/16384")),
		"tablespace": NewRules([]string{"/PG_15_*"}, append([]string{"/*"}, GlobalExcludes...)),
	}
	for set, list := range cases {
		if len(list) < 5 {
			t.Fatalf("%s: too few cases", set)
		}
		for _, c := range list {
			path, isDir, want := c[0].(string), c[1].(bool), c[2].(bool)
			if got := sets[set].Allowed(path, isDir); got != want {
				t.Errorf("%s: Allowed(%q, dir=%v) = %v, Barman says %v", set, path, isDir, got, want)
			}
		}
	}
}

func TestRuleSyntax(t *testing.T) {
	r := NewRules(nil, []string{"/a/**", "dironly/", "x?z"})
	for _, c := range []struct {
		path  string
		dir   bool
		allow bool
	}{
		{"a/b/c/d", false, false},
		{"b/a/c", false, true},
		{"dironly", true, false},
		{"dironly", false, true},
		{"deep/dironly", true, false},
		{"xyz", false, false},
		{"x/z", false, false}, // "?" is any character, "/" too, as in Barman
		{"xz", false, true},
	} {
		if got := r.Allowed(c.path, c.dir); got != c.allow {
			t.Errorf("Allowed(%q, %v) = %v, want %v", c.path, c.dir, got, c.allow)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{DirMember(""), "."},
		{DirMember("base/1"), "base/1"},
		{FileMember("", "PG_VERSION"), "./PG_VERSION"},
		{FileMember("base/1", "1259"), "base/1/1259"},
		{VolumeName("data", 0, ".gz"), "data.tar.gz"},
		{VolumeName("data", 1, ""), "data_0001.tar"},
		{VolumeName("16384", 12, ".snappy"), "16384_0012.tar.snappy"},
		{JoinKey("", "srv", "base", "ID"), "srv/base/ID"},
		{JoinKey("pfx/", "srv"), "pfx/srv"},
		{JoinKey("a//b", "srv"), "a//b/srv"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// LiveExcludes drop the exclusive backup's files at the PGDATA root only
// (basebackup.c, excludeFiles).
func TestLiveExcludes(t *testing.T) {
	r := NewRules(nil, append(append(append([]string{}, PGDataExcludes...), GlobalExcludes...), LiveExcludes...))
	for _, c := range []struct {
		path  string
		allow bool
	}{
		{"./backup_label", false},
		{"./tablespace_map", false},
		{"./backup_label.old", true},
		{"base/5/backup_label", true},
		{"pg_tblspc/tablespace_map", true},
		{"./PG_VERSION", true},
	} {
		if got := r.Allowed(c.path, false); got != c.allow {
			t.Errorf("Allowed(%q) = %v, want %v", c.path, got, c.allow)
		}
	}
}

// KeepsEmpty names the directories of the "DIR/*" rules, PostgreSQL's
// excludeDirContents among them, at the depths the rules apply.
func TestKeepsEmpty(t *testing.T) {
	pgdata := NewRules(nil, append(append(append([]string{}, PGDataExcludes...), GlobalExcludes...), "/pg_tblspc/16384"))
	tbs := NewRules([]string{"/PG_15_*"}, append([]string{"/*"}, GlobalExcludes...))
	for _, c := range []struct {
		rules *Rules
		dir   string
		empty bool
	}{
		{pgdata, "pg_notify", true},
		{pgdata, "pg_stat_tmp", true},
		{pgdata, "pg_replslot", true},
		{pgdata, "pg_dynshmem", true},
		{pgdata, "pg_serial", true},
		{pgdata, "pg_snapshots", true},
		{pgdata, "pg_subtrans", true},
		{pgdata, "pg_wal", true},
		{pgdata, "pg_log", true},
		{pgdata, "base/5/pg_stat_tmp", true},
		{pgdata, "base/log", false}, // "/log/*" is anchored
		{pgdata, "base", false},
		{pgdata, "pg_tblspc/16384", false},
		{pgdata, "base/pgsql_tmp", false}, // left out altogether
		{tbs, "PG_15_202209061/pg_notify", true},
		{tbs, "other", false},
	} {
		if got := c.rules.KeepsEmpty(c.dir); got != c.empty {
			t.Errorf("KeepsEmpty(%q) = %v, want %v", c.dir, got, c.empty)
		}
	}
}
