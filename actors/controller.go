package actors

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// controller is the checkpoint controller: it starts the backup, hands the
// layout to the walker (and to the estimator), and stops the backup only
// once the sealer says every file has been read into the archives; then it
// hands the sealer backup_label. Whatever fails, backup mode is ended.
//
// Reading a file after the stop breaks the backup: PostgreSQL's low-level
// API requires the copy to happen between pg_backup_start and
// pg_backup_stop, since WAL replay only repairs changes made before the
// stop. Waiting for the walker (which only lists files) would not do:
// what it listed may still be queued.
func controller(ctx context.Context, src Source, info *pg.BackupInfo, p *Progress, j *Journal,
	started, estimate chan<- *pg.Layout, copied <-chan struct{}, labels chan<- tarball.Entry) error {
	defer close(labels)
	defer close(estimate)
	p.enter(PhaseCheckpoint)
	layout, err := src.Begin(ctx, info)
	if err != nil {
		close(started)
		src.Abort(ctx)
		return err
	}
	p.enter(PhaseCopy)
	started <- layout  // buffered: never blocks
	estimate <- layout // the same
	close(started)
	select {
	case <-copied:
	case <-ctx.Done():
		src.Abort(ctx)
		return ctx.Err()
	}
	p.enter(PhaseFinish)
	j.record(Event{Kind: EventStopRequested})
	zerolog.Ctx(ctx).Debug().Msg("Every file is read: requesting the backup stop")
	label, err := src.End(ctx, info)
	if err != nil {
		src.Abort(ctx)
		return err
	}
	j.record(Event{Kind: EventStopped})
	if len(label) > 0 { // a Barman backup holds its backup_label in data/
		labels <- labelEntry(layout.PGData, label) // buffered: never blocks
	}
	return nil
}
