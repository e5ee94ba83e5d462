package main

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// walExtensions are the compressions barman-cloud-wal-archive writes
// (cloud.py, ALLOWED_COMPRESSIONS): one may follow a segment's name.
var walExtensions = []string{".gz", ".bz2", ".xz", ".snappy", ".zst", ".lz4"}

// segment is a WAL segment by timeline, log and number.
type segment struct {
	tli, log, seg uint64
}

func parseSegment(name string) (segment, bool) {
	if len(name) != 24 {
		return segment{}, false
	}
	var s segment
	var err error
	for i, dst := range []*uint64{&s.tli, &s.log, &s.seg} {
		if *dst, err = strconv.ParseUint(name[8*i:8*i+8], 16, 32); err != nil {
			return segment{}, false
		}
	}
	return s, true
}

func (s segment) name() string { return fmt.Sprintf("%08X%08X%08X", s.tli, s.log, s.seg) }

// dir is the folder barman-cloud-wal-archive stores the segment in:
// timeline and log, 16 hex digits (xlog.py, hash_dir).
func (s segment) dir() string { return s.name()[:16] }

// checkWAL checks that the WAL archive under wals (PREFIX/SERVER/wals/)
// holds every segment from backup.info's begin_wal to end_wal, which a
// restore replays to make the backup consistent, and the history file of
// the backup's timeline after the first. It lists only the folders of
// those segments.
func checkWAL(ctx context.Context, r uploaders.Reader, wals string, info *pg.InfoFile, rep *actors.RestoreReport) error {
	rep.WALChecked = true
	begin, ok1 := parseSegment(info.BeginWAL)
	end, ok2 := parseSegment(info.EndWAL)
	if !ok1 || !ok2 || info.SegmentSize <= 0 || (1<<32)%info.SegmentSize != 0 {
		rep.Problem("wal", "backup.info", "", "cannot check the WAL archive: begin_wal %q, end_wal %q, xlog_segment_size %d",
			info.BeginWAL, info.EndWAL, info.SegmentSize)
		return nil
	}
	perLog := uint64(1<<32) / uint64(info.SegmentSize)
	var need []segment
	for s := begin; ; {
		need = append(need, s)
		if (s.log == end.log && s.seg >= end.seg) || s.log > end.log || len(need) > 1<<20 {
			break
		}
		if s.seg++; s.seg >= perLog {
			s.log, s.seg = s.log+1, 0
		}
	}
	if last := need[len(need)-1]; last.tli != end.tli {
		need[len(need)-1].tli = end.tli
	}
	rep.WALSegments = len(need)
	archived := map[string]map[string]bool{}
	for _, s := range need {
		if archived[s.dir()] != nil {
			continue
		}
		l, err := r.ListDir(ctx, wals+s.dir()+"/", "")
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for _, o := range l.Objects {
			names[stripWALExtension(path.Base(o.Key))] = true
		}
		archived[s.dir()] = names
	}
	for _, s := range need {
		if !archived[s.dir()][s.name()] {
			rep.Problem("wal", "", "wals/"+s.dir()+"/"+s.name(),
				"missing from the WAL archive: a restore of the backup cannot replay to its end")
		}
	}
	if end.tli > 1 {
		history := fmt.Sprintf("%08X.history", end.tli)
		l, err := r.ListDir(ctx, wals+history, "/")
		if err != nil {
			return err
		}
		found := false
		for _, o := range l.Objects {
			found = found || stripWALExtension(path.Base(o.Key)) == history
		}
		if !found {
			rep.Problem("wal", "", "wals/"+history, "missing from the WAL archive: the history of the backup's timeline %d", end.tli)
		}
	}
	return nil
}

func stripWALExtension(name string) string {
	for _, ext := range walExtensions {
		if base, ok := strings.CutSuffix(name, ext); ok {
			return base
		}
	}
	return name
}
