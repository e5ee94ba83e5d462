package actors

import (
	"context"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// controller is the checkpoint controller: it starts the backup, hands the
// layout to the walker, and once the walk is over stops the backup and
// hands back backup_label. Whatever fails, backup mode is ended.
func controller(ctx context.Context, src Source, info *pg.BackupInfo,
	started chan<- *pg.Layout, walked <-chan struct{}, stopped chan<- []byte) error {
	defer close(stopped)
	layout, err := src.Begin(ctx, info)
	if err != nil {
		close(started)
		src.Abort(ctx)
		return err
	}
	started <- layout // buffered: never blocks
	close(started)
	select {
	case <-walked:
	case <-ctx.Done():
		src.Abort(ctx)
		return ctx.Err()
	}
	label, err := src.End(ctx, info)
	if err != nil {
		src.Abort(ctx)
		return err
	}
	stopped <- label
	return nil
}
