package pg

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// The expected files were written by Barman 3.4's own infofile module for
// the same values (see testdata/README).
func TestMarshalMatchesBarman(t *testing.T) {
	label := "START WAL LOCATION: 0/2C000028 (file 00000001000000000000002C)\nLABEL: it's \"quoted\" \\ tab\there\n"
	begin := time.Date(2026, 11, 24, 14, 7, 15, 661613000, time.FixedZone("", 5*3600+1800))
	end := time.Date(2026, 11, 24, 14, 7, 19, 0, time.UTC)
	info := &BackupInfo{
		BackupLabel: &label, BackupName: "nightly",
		BeginOffset: Int64(40), BeginTime: &begin, BeginWAL: "00000001000000000000002C", BeginXLOG: "0/2C000028",
		ConfigFile: "/etc/postgresql/15/main/postgresql.conf",
		CopyStats: &CopyStats{
			TotalTime: 6.0, NumberOfWorkers: 2,
			CopyTimePerItem:           []ItemTime{{"16384", 6.047713}, {"data", 1e-05}},
			SerializedCopyTimePerItem: []ItemTime{{"16384", 2.062959}, {"data", 123456.000001}},
			CopyTime:                  0.0001, SerializedCopyTime: 11.794609,
		},
		EndOffset: Int64(312), EndTime: &end, EndWAL: "00000001000000000000002C", EndXLOG: "0/2C000138",
		HBAFile: "/etc/postgresql/15/main/pg_hba.conf", IdentFile: "/etc/postgresql/15/main/pg_ident.conf",
		IncludedFiles: []string{"/etc/postgresql/15/main/conf.d/a.conf", "/var/lib/postgresql/15/main/postgresql.auto.conf"},
		PGData:        "/var/lib/postgresql/15/main", ServerName: "cloud", Status: StatusDone,
		SystemID:    "7711737989575920341",
		Tablespaces: []Tablespace{{"tbs1", 16384, "/srv/pg/tbs1"}, {"tbs 2", 16390, "/srv/pg/o'brien"}},
		Timeline:    Int64(1), Version: Int64(150018), XLOGSegmentSize: Int64(16777216),
	}
	compare(t, "testdata/backup.info.done", info.Marshal())

	failed := &BackupInfo{ServerName: "cloud", Status: StatusFailed, Error: "failure uploading data (boom)", SystemID: "1"}
	compare(t, "testdata/backup.info.failed", failed.Marshal())
}

func compare(t *testing.T, file string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 6: "6.0", 6.293283: "6.293283", 1e-05: "1e-05", 0.0001: "0.0001",
		1e16: "1e+16", 123456.000001: "123456.000001", 1.5e-07: "1.5e-07", 9999999999999998: "9999999999999998.0",
	} {
		if got := PyFloat(f); got != want {
			t.Errorf("PyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestPyRepr(t *testing.T) {
	for s, want := range map[string]string{
		"plain":    "'plain'",
		"it's":     `"it's"`,
		`it's "x"`: `'it\'s "x"'`,
		"a\nb\\c":  `'a\nb\\c'`,
		"\x01é":    `'\x01é'`,
	} {
		if got := PyRepr(s); got != want {
			t.Errorf("PyRepr(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestWALFileName(t *testing.T) {
	for _, c := range []struct {
		lsn      string
		tli, seg int64
		name     string
		off      int64
	}{
		{"0/2C000028", 1, 16 << 20, "00000001000000000000002C", 40},
		{"0/2C000138", 1, 16 << 20, "00000001000000000000002C", 312},
		{"1/FF000000", 2, 16 << 20, "0000000200000001000000FF", 0},
		{"3/80000010", 1, 1 << 30, "000000010000000300000002", 16},
	} {
		lsn, err := ParseLSN(c.lsn)
		if err != nil {
			t.Fatal(err)
		}
		name, off := WALFileName(lsn, c.tli, c.seg)
		if name != c.name || off != c.off {
			t.Errorf("WALFileName(%s) = %s, %d; want %s, %d", c.lsn, name, off, c.name, c.off)
		}
	}
	if _, err := ParseLSN("nope"); err == nil {
		t.Error("ParseLSN accepted a bad LSN")
	}
}

func TestConnString(t *testing.T) {
	for _, c := range []struct{ host, port, user, db, want string }{
		{"", "", "", "postgres", "dbname=postgres"},
		{"/var/run/postgresql", "5433", "barman", "postgres", "host=/var/run/postgresql port=5433 user=barman dbname=postgres"},
		{"h", "", "", "host=x dbname=y", "host=x dbname=y"},
		{"", "", "o'neil", "my db", `user='o\'neil' dbname='my db'`},
	} {
		if got := ConnString(c.host, c.port, c.user, c.db); got != c.want {
			t.Errorf("ConnString = %q, want %q", got, c.want)
		}
	}
}

func TestRedactConnErr(t *testing.T) {
	got := redactConnErr(errors.New("cannot parse `host=x password=s3cret user=y`:\n\tfailed"))
	if strings.Contains(got, "s3cret") || strings.Contains(got, "\n") {
		t.Errorf("redactConnErr leaked or kept lines: %q", got)
	}
}

func TestParsePyTimeReadsWhatPyTimeWrites(t *testing.T) {
	for _, want := range []time.Time{
		time.Date(2026, 11, 24, 14, 8, 34, 889012000, time.UTC),
		time.Date(2026, 11, 24, 14, 8, 34, 0, time.FixedZone("", -5*3600-30*60)),
	} {
		got, err := ParsePyTime(PyTime(want))
		if err != nil || !got.Equal(want) {
			t.Errorf("ParsePyTime(%q) = %v, %v; want %v", PyTime(want), got, err, want)
		}
	}
	if _, err := ParsePyTime("yesterday"); err == nil {
		t.Error("ParsePyTime accepted yesterday")
	}
}
