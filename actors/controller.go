package actors

import (
	"context"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// controller is the checkpoint controller: it starts the backup, hands the
// layout to the walker (and to the estimator), and once the walk is over
// stops the backup and hands back backup_label. Whatever fails, backup
// mode is ended.
func controller(ctx context.Context, src Source, info *pg.BackupInfo, p *Progress,
	started, estimate chan<- *pg.Layout, walked <-chan struct{}, stopped chan<- []byte) error {
	defer close(stopped)
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
	case <-walked:
	case <-ctx.Done():
		src.Abort(ctx)
		return ctx.Err()
	}
	p.enter(PhaseFinish)
	label, err := src.End(ctx, info)
	if err != nil {
		src.Abort(ctx)
		return err
	}
	stopped <- label
	return nil
}
