package pg

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// What we write as backup.info, Barman's reader (and our reader of
// Barman's files) reads back: one key per line whatever the values, and
// tablespace names and paths through their Python reprs unchanged.
func FuzzBackupInfoRoundTrip(f *testing.F) {
	f.Add("DONE", "/var/lib/postgresql/15/main", "", "tbs1", "/srv/tbs", uint32(16384), int64(150004))
	f.Add("FAILED", "/data", "failure uploading data (HTTP 503)\nDETAIL: x\nstatus=DONE", "it's", `C:\"q"`, uint32(1), int64(90600))
	f.Add("STARTED", "/d\r", "é\x00\x7f", "\U0001F600\u00a0", "\t\\x41", uint32(4294967295), int64(1))
	dir := f.TempDir()
	fields := strings.Count(string((&BackupInfo{}).Marshal()), "\n")
	f.Fuzz(func(t *testing.T, status, pgdata, errMsg, tsName, tsLoc string, oid uint32, version int64) {
		for _, s := range []string{status, pgdata, errMsg, tsName, tsLoc} {
			// A Python str holds text: backup.info never sees bad UTF-8.
			if !utf8.ValidString(s) {
				t.Skip()
			}
		}
		if version <= 0 {
			version = 150000
		}
		in := &BackupInfo{Status: status, PGData: pgdata, Error: errMsg, Version: Int64(version),
			Tablespaces: []Tablespace{{Name: tsName, OID: oid, Location: tsLoc}}}
		raw := in.Marshal()
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		if len(lines) != fields {
			t.Fatalf("%d lines, want %d: a value broke its line:\n%s", len(lines), fields, raw)
		}
		var keys []string
		for _, l := range lines {
			k, _, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("line without a key: %q", l)
			}
			keys = append(keys, k)
		}
		if !slices.IsSorted(keys) || len(slices.Compact(keys)) != len(lines) {
			t.Fatalf("keys not sorted and unique: %v", keys)
		}
		if err := os.WriteFile(filepath.Join(dir, "backup.info"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := LoadBarmanBackup(dir, "")
		if err != nil {
			t.Fatalf("read back: %v\n%s", err, raw)
		}
		if !bytes.Equal(out.Raw, raw) || out.Version != int64(version) {
			t.Fatalf("raw or version changed")
		}
		if want := statusOrEmpty(oneLine(status)); want != none && out.Status != want {
			t.Errorf("status %q, want %q", out.Status, want)
		}
		if want := oneLine(pgdata); want != "" && want != none && out.PGData != want {
			t.Errorf("pgdata %q, want %q", out.PGData, want)
		}
		if len(out.Tablespaces) != 1 || out.Tablespaces[0] != in.Tablespaces[0] {
			t.Errorf("tablespaces %+v, want %+v (written as %s)", out.Tablespaces, in.Tablespaces, tablespacesRepr(in.Tablespaces))
		}
	})
}

// The tablespace parser reads any text without panicking, and what it
// accepts it can write back to an equal list.
func FuzzParseTablespaces(f *testing.F) {
	f.Add("[('tbs1', 16384, '/srv/tbs')]")
	f.Add(`[("it's", 1, 'a\\b\x41\u00e9')]`)
	f.Add("[]")
	f.Add("[('a', 99999999999999999999, 'b')")
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseTablespaces(s)
		if err != nil || len(ts) == 0 {
			return // none is written as None, which the reader skips
		}
		for _, tbs := range ts {
			// Python's str is text; a byte or surrogate that is not
			// cannot come from Barman.
			for _, s := range []string{tbs.Name, tbs.Location} {
				if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
					return
				}
			}
		}
		again, err := parseTablespaces(tablespacesRepr(ts))
		if err != nil || !slices.Equal(again, ts) {
			t.Fatalf("%q: parsed %+v, rewritten as %s, read back %+v (%v)", s, ts, tablespacesRepr(ts), again, err)
		}
	})
}
