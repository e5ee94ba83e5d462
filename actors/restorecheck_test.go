package actors

import (
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// problems is a report's problems, one per line.
func problems(rep *RestoreReport) string {
	var lines []string
	for _, p := range rep.Problems {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

func TestWALRangeAgainstBackupInfo(t *testing.T) {
	m := &pg.BackupManifest{Version: 2, HasSystemID: true, SystemID: 42,
		WALRanges: []pg.WALRange{{Timeline: 1, Start: 0x5000028, End: 0x5000100}}}
	for _, c := range []struct {
		name              string
		begin, end, sysid string
		timeline          int64
		want              string
	}{
		{"ours", "0/5000028", "0/5000100", "42", 1, ""},
		// Barman's pg_basebackup backups end at the next segment.
		{"barman", "0/5000028", "0/6000000", "42", 1, ""},
		{"other-start", "0/4000028", "0/5000100", "42", 1, "the manifest is another backup's"},
		{"ends-before", "0/5000028", "0/50000F0", "42", 1, "the manifest is another backup's"},
		{"timeline", "0/5000028", "0/5000100", "42", 2, "on timeline 2"},
		{"cluster", "0/5000028", "0/5000100", "43", 1, "the manifest is another cluster's"},
	} {
		rep := &RestoreReport{}
		v := &verifier{rep: rep}
		v.checkHeader(m, &pg.InfoFile{BeginXLOG: c.begin, EndXLOG: c.end, SystemID: c.sysid, Timeline: c.timeline})
		if got := problems(rep); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
