package actors

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// Phase is where a run is.
type Phase int32

// A run goes through these phases in order.
const (
	// PhaseCheckpoint waits for PostgreSQL's start-of-backup checkpoint.
	PhaseCheckpoint Phase = iota
	// PhaseCopy reads, compresses and uploads the files.
	PhaseCopy
	// PhaseStop waits for pg_backup_stop, which returns once PostgreSQL
	// has archived the WAL the backup needs.
	PhaseStop
	// PhaseFinish stores what is left: the last parts, backup_label,
	// backup_manifest and backup.info.
	PhaseFinish
	// PhaseDone is the end, whether the run succeeded or not.
	PhaseDone
)

// Progress is a run's state as the actors update it, safe to read from any
// goroutine while the run goes on: for a progress display and for the
// summary. The engine never waits on whoever reads it.
type Progress struct {
	phase atomic.Int32
	// Estimated is what the walk is expected to read: the sizes of the
	// files found by a quick sweep of the same directories before the copy
	// starts; EstimateDone is set once it is known.
	Estimated    atomic.Int64
	EstimateDone atomic.Bool
	// Read is the file bytes put into archives so far.
	Read atomic.Int64
	// Stored is the bytes uploaded so far, after compression.
	Stored atomic.Int64
	// Parts counts the uploads made: multipart parts and whole objects.
	Parts atomic.Int64
	// Pages is what the copy's page checksum check found.
	Pages PageTally

	// at holds the instants of marks, as Unix nanoseconds; 0 until reached.
	at     [markCount]atomic.Int64
	notice atomic.Pointer[Notice]
}

// mark is an instant of a run that bounds a phase.
type mark int

const (
	markStartAsked mark = iota
	markStarted
	markFirstRead
	markLastRead
	markStopAsked
	markStopped
	markStored
	markCount
)

// reach records that the run has reached m now, unless it already had.
func (p *Progress) reach(m mark) {
	p.at[m].CompareAndSwap(0, time.Now().UnixNano())
}

func (p *Progress) time(m mark) time.Time {
	if n := p.at[m].Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Span is a phase's beginning and end; either is zero while not reached.
type Span struct{ Begin, End time.Time }

// Done tells whether the phase both began and ended.
func (s Span) Done() bool { return !s.Begin.IsZero() && !s.End.IsZero() }

// Duration is how long the phase took, or has taken so far if it has
// begun and not ended; 0 if it has not begun.
func (s Span) Duration() time.Duration {
	switch {
	case s.Begin.IsZero():
		return 0
	case s.End.IsZero():
		return time.Since(s.Begin)
	}
	return s.End.Sub(s.Begin)
}

// Phases is where a run's time went, for a DBA to tell a slow checkpoint,
// a slow disk or store, and a slow archive_command apart.
type Phases struct {
	// Start is from asking the source to start the backup to its answer:
	// on a live server mostly pg_backup_start's checkpoint.
	Start Span
	// Copy is from the first byte read from a file to the last one, as
	// the sealer, which reads the files, sees them.
	Copy Span
	// Stop is from asking the source to stop the backup to its answer:
	// on a live server mostly pg_backup_stop's wait for the WAL archive.
	Stop Span
	// UploadTail is from the stop's answer to the last object stored
	// (backup.info): the uploads the stop did not already cover.
	UploadTail Span
}

// Phases returns the phases' spans as far as the run has gone.
func (p *Progress) Phases() Phases {
	return Phases{
		Start:      Span{p.time(markStartAsked), p.time(markStarted)},
		Copy:       Span{p.time(markFirstRead), p.time(markLastRead)},
		Stop:       Span{p.time(markStopAsked), p.time(markStopped)},
		UploadTail: Span{p.time(markStopped), p.time(markStored)},
	}
}

// Notice is a message the source sent while the backup ran, such as
// PostgreSQL's "still waiting for all required WAL segments to be
// archived" during pg_backup_stop.
type Notice struct {
	Severity, Message string
	Time              time.Time
}

// Notify records the source's latest notice, for a display to relay.
func (p *Progress) Notify(severity, message string) {
	p.notice.Store(&Notice{Severity: severity, Message: message, Time: time.Now()})
}

// LastNotice is the latest notice Notify recorded, or nil.
func (p *Progress) LastNotice() *Notice { return p.notice.Load() }

// Phase is the run's current phase.
func (p *Progress) Phase() Phase { return Phase(p.phase.Load()) }

func (p *Progress) enter(ph Phase) { p.phase.Store(int32(ph)) }

// sweep sums the sizes of the files under the layout's directories, for
// the part size and Progress.Estimated, and counts them, for the memory
// budget. It reads no rules and ignores what it cannot stat: it is an
// upper bound of what the walk reads (it also counts files the rules leave
// out), taken before the copy starts. A directory is read in batches,
// unsorted: a sum needs no order, and so a directory of many files is
// never held whole.
func sweep(ctx context.Context, layout *pg.Layout) (total, files int64, err error) {
	roots := []string{layout.PGData}
	for _, ts := range layout.Tablespaces {
		dirs, _ := filepath.Glob(filepath.Join(ts.Location, "PG_"+layout.MajorVersion+"_*"))
		roots = append(roots, dirs...)
	}
	wal := map[string]bool{filepath.Join(layout.PGData, "pg_wal"): true, filepath.Join(layout.PGData, "pg_xlog"): true}
	var dir func(path string) error
	dir = func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch, err := f.ReadDir(256)
			for _, d := range batch {
				switch sub := filepath.Join(path, d.Name()); {
				case d.IsDir() && !wal[sub]: // WAL is not part of a base backup
					if err := dir(sub); err != nil {
						return err
					}
				case d.Type().IsRegular():
					files++
					if fi, err := d.Info(); err == nil {
						total += fi.Size()
					}
				}
			}
			if err != nil {
				return nil // io.EOF, or what cannot be read
			}
		}
	}
	for _, root := range roots {
		if err := dir(root); err != nil {
			return 0, 0, err
		}
	}
	return total, files, nil
}
