package actors

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"

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
	// PhaseFinish stops the backup and stores backup_label and backup.info.
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
}

// Phase is the run's current phase.
func (p *Progress) Phase() Phase { return Phase(p.phase.Load()) }

func (p *Progress) enter(ph Phase) { p.phase.Store(int32(ph)) }

// sweep sums the sizes of the files under the layout's directories, for
// the part size and Progress.Estimated. It reads no rules and ignores what
// it cannot stat: it is an upper bound of what the walk reads (it also
// counts files the rules leave out), taken before the copy starts.
func sweep(ctx context.Context, layout *pg.Layout) (int64, error) {
	roots := []string{layout.PGData}
	for _, ts := range layout.Tablespaces {
		dirs, _ := filepath.Glob(filepath.Join(ts.Location, "PG_"+layout.MajorVersion+"_*"))
		roots = append(roots, dirs...)
	}
	wal := map[string]bool{filepath.Join(layout.PGData, "pg_wal"): true, filepath.Join(layout.PGData, "pg_xlog"): true}
	var total int64
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d != nil && d.IsDir() && wal[path] {
				return fs.SkipDir // WAL is not part of a base backup
			}
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}
