package pg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A history file as a promoted server writes it (timeline.c,
// writeTimeLineHistory), with what readTimeLineHistory also accepts:
// blank lines, comments, leading blanks and no reason.
func TestParseTimeLineHistory(t *testing.T) {
	content := "# written by hand\n1\t0/3000158\tno recovery target specified\n\n" +
		"  2\t0/5000000\tbefore 2026-11-24 12:00:00+00\n3 1/A0\n"
	got, err := ParseTimeLineHistory(4, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	want := []TimeLineHistoryEntry{
		{TLI: 4, Begin: 1<<32 | 0xA0},
		{TLI: 3, Begin: 0x5000000, End: 1<<32 | 0xA0},
		{TLI: 2, Begin: 0x3000158, End: 0x5000000},
		{TLI: 1, End: 0x3000158},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history %+v, want %+v", got, want)
	}
	for _, bad := range []struct {
		tli          uint32
		content, err string
	}{
		{3, "one\t0/1\n", "numeric timeline ID"},
		{3, "1\n", "switchpoint"},
		{3, "1\tnowhere\n", "invalid LSN"},
		{3, "2\t0/1\n1\t0/2\n", "increasing sequence"},
		{2, "1\t0/1\n2\t0/2\n", "less than child"},
	} {
		if _, err := ParseTimeLineHistory(bad.tli, []byte(bad.content)); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("history %q of %d: error %v, want one about %s", bad.content, bad.tli, err, bad.err)
		}
	}
}

func TestReadTimeLineHistory(t *testing.T) {
	pgdata := t.TempDir()
	os.MkdirAll(filepath.Join(pgdata, "pg_wal"), 0o700)
	os.WriteFile(filepath.Join(pgdata, "pg_wal", "0000000A.history"), []byte("1\t0/3000158\treason\n"), 0o600)
	if h, err := ReadTimeLineHistory(pgdata, 10); err != nil || len(h) != 2 || h[0].TLI != 10 || h[1].TLI != 1 {
		t.Errorf("timeline 10: %+v, %v", h, err)
	}
	if h, err := ReadTimeLineHistory(pgdata, 1); err != nil || !reflect.DeepEqual(h, []TimeLineHistoryEntry{{TLI: 1}}) {
		t.Errorf("timeline 1, which has no file: %+v, %v", h, err)
	}
	if _, err := ReadTimeLineHistory(pgdata, 11); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing history: %v", err)
	}
}

func TestWALFileTimeLine(t *testing.T) {
	if tli, err := WALFileTimeLine("0000000A000000000000002D"); err != nil || tli != 10 {
		t.Errorf("got %d, %v", tli, err)
	}
	for _, bad := range []string{"", "00000001", "XXXXXXXX000000000000002D", "00000000000000000000002D"} {
		if _, err := WALFileTimeLine(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The ranges are backup_manifest.c's (AddWALInfoToBackupManifest).
func TestBackupWALRanges(t *testing.T) {
	// Timeline 4's history: 1 until 0/1000000, 2 until 0/2C400000, 3
	// until 0/2C800000.
	h4 := []TimeLineHistoryEntry{
		{TLI: 4, Begin: 0x2C800000},
		{TLI: 3, Begin: 0x2C400000, End: 0x2C800000},
		{TLI: 2, Begin: 0x1000000, End: 0x2C400000},
		{TLI: 1, End: 0x1000000},
	}
	for _, c := range []struct {
		name       string
		history    []TimeLineHistoryEntry
		startTLI   uint32
		start      uint64
		endTLI     uint32
		end        uint64
		want       []WALRange
		wantErrSub string
	}{
		{"one timeline", h4[:1], 4, 0x2D000028, 4, 0x2D000138,
			[]WALRange{{4, 0x2D000028, 0x2D000138}}, ""},
		{"timeline 1", []TimeLineHistoryEntry{{TLI: 1}}, 1, 0x28, 1, 0x138,
			[]WALRange{{1, 0x28, 0x138}}, ""},
		// The start timeline's range starts at the start, not where the
		// timeline began (PostgreSQL 13.0 to 13.2 wrote the latter).
		{"three timelines", h4, 2, 0x2C000028, 4, 0x2D000138,
			[]WALRange{{4, 0x2C800000, 0x2D000138}, {3, 0x2C400000, 0x2C800000}, {2, 0x2C000028, 0x2C400000}}, ""},
		{"start at a switchpoint", h4, 3, 0x2C800000, 4, 0x2D000138,
			[]WALRange{{4, 0x2C800000, 0x2D000138}, {3, 0x2C800000, 0x2C800000}}, ""},
		{"from the first timeline", h4, 1, 0x28, 4, 0x2D000138,
			[]WALRange{{4, 0x2C800000, 0x2D000138}, {3, 0x2C400000, 0x2C800000}, {2, 0x1000000, 0x2C400000}, {1, 0x28, 0x1000000}}, ""},
		{"start timeline ended before the start", h4, 2, 0x2C500000, 4, 0x2D000138, nil, "start timeline 2 not found in history of timeline 4"},
		{"start timeline not in the history", h4, 5, 0x28, 4, 0x2D000138, nil, "expected start timeline 5 but found timeline 1"},
		{"end timeline not the history's", h4, 2, 0x2C000028, 5, 0x2D000138, nil, "expected end timeline 5 but found timeline 4"},
		{"end before the end timeline began", h4, 2, 0x2C000028, 4, 0x2C700000, nil, "after the backup's end"},
	} {
		got, err := BackupWALRanges(c.history, c.startTLI, c.start, c.endTLI, c.end)
		switch {
		case c.wantErrSub != "" && (err == nil || !strings.Contains(err.Error(), c.wantErrSub)):
			t.Errorf("%s: %+v, %v; want an error with %q", c.name, got, err, c.wantErrSub)
		case c.wantErrSub == "" && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}
