package pg

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TimeLineHistoryEntry is one timeline of a timeline's history: TLI was
// the server's timeline from Begin to End, 0 for an End when it has not
// ended and for a Begin when it is the first (timeline.h).
type TimeLineHistoryEntry struct {
	TLI   uint32
	Begin uint64
	End   uint64
}

// TLHistoryFileName is the name of timeline tli's history file in pg_wal
// (xlog_internal.h, TLHistoryFileName).
func TLHistoryFileName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }

// WALFileTimeLine is the timeline a WAL segment file name such as
// 00000002000000000000002D is stamped with: its first 8 hex digits
// (xlog_internal.h, XLogFromFileName).
func WALFileTimeLine(name string) (uint32, error) {
	if len(name) < 24 {
		return 0, fmt.Errorf("WAL file name %q: too short", name)
	}
	tli, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil || tli == 0 {
		return 0, fmt.Errorf("WAL file name %q: no timeline", name)
	}
	return uint32(tli), nil
}

// ReadTimeLineHistory reads the history of timeline tli from its history
// file in pgdata's pg_wal, newest timeline first. Timeline 1 has none.
// A server that switched to tli keeps the file there whether it made the
// timeline (promotion) or followed it (the walreceiver writes it, and a
// standby restoring from the archive keeps it: timeline.c,
// readTimeLineHistory), and history files are never removed, so the file
// the server itself read is there for us too.
func ReadTimeLineHistory(pgdata string, tli uint32) ([]TimeLineHistoryEntry, error) {
	if tli == 1 {
		return []TimeLineHistoryEntry{{TLI: 1}}, nil
	}
	path := filepath.Join(pgdata, "pg_wal", TLHistoryFileName(tli))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the history of timeline %d: %w", tli, err)
	}
	h, err := ParseTimeLineHistory(tli, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// ParseTimeLineHistory reads the content of timeline tli's history file
// as PostgreSQL does (timeline.c, readTimeLineHistory): one line per
// parent timeline, "TLI<tab>SWITCHPOINT<tab>reason", oldest first, blank
// lines and "#" comments skipped. The result is newest first: tli itself,
// from the last switchpoint on, then each parent down to the first.
func ParseTimeLineHistory(tli uint32, content []byte) ([]TimeLineHistoryEntry, error) {
	var parents []TimeLineHistoryEntry
	var prevEnd uint64
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		parent, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("syntax error in history file: %q: expected a numeric timeline ID", line)
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("syntax error in history file: %q: expected a write-ahead log switchpoint location", line)
		}
		switchpoint, err := ParseLSN(fields[1])
		if err != nil {
			return nil, fmt.Errorf("syntax error in history file: %q: %w", line, err)
		}
		if n := len(parents); n > 0 && uint32(parent) <= parents[n-1].TLI {
			return nil, fmt.Errorf("invalid data in history file: timeline IDs must be in increasing sequence")
		}
		parents = append(parents, TimeLineHistoryEntry{TLI: uint32(parent), Begin: prevEnd, End: switchpoint})
		prevEnd = switchpoint
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read history file: %w", err)
	}
	if n := len(parents); n > 0 && tli <= parents[n-1].TLI {
		return nil, fmt.Errorf("invalid data in history file: timeline IDs must be less than child timeline's ID")
	}
	out := []TimeLineHistoryEntry{{TLI: tli, Begin: prevEnd}}
	for i := len(parents) - 1; i >= 0; i-- {
		out = append(out, parents[i])
	}
	return out, nil
}

// BackupWALRanges is the WAL-Ranges of a backup that started at start on
// timeline startTLI and ended at end on endTLI, given endTLI's history
// (newest first, see ParseTimeLineHistory), as the server writes them
// (backup_manifest.c, AddWALInfoToBackupManifest): newest timeline first,
// one range per timeline the backup crossed, each ending where the next
// timeline began (the last at end) and starting where its timeline
// began, but the start timeline's at start. Timelines that ended before
// the start are skipped.
func BackupWALRanges(history []TimeLineHistoryEntry, startTLI uint32, start uint64, endTLI uint32, end uint64) ([]WALRange, error) {
	var out []WALRange
	for _, e := range history {
		if e.End != 0 && e.End < start {
			continue
		}
		if len(out) == 0 && e.TLI != endTLI {
			return nil, fmt.Errorf("expected end timeline %d but found timeline %d", endTLI, e.TLI)
		}
		begin := start
		if e.TLI != startTLI {
			if e.Begin == 0 {
				return nil, fmt.Errorf("expected start timeline %d but found timeline %d", startTLI, e.TLI)
			}
			begin = e.Begin
		}
		// Not a check of the server's: ours reads the end timeline apart
		// from the stop, and a range that ends before it starts would
		// only make pg_verifybackup fail.
		if begin > end {
			return nil, fmt.Errorf("timeline %d begins at %s, after the backup's end at %s", e.TLI, FormatLSN(begin), FormatLSN(end))
		}
		out = append(out, WALRange{Timeline: e.TLI, Start: begin, End: end})
		if e.TLI == startTLI {
			return out, nil
		}
		end = e.Begin
	}
	return nil, fmt.Errorf("start timeline %d not found in history of timeline %d", startTLI, endTLI)
}
