package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// manifestWriter records the statistics and uploads backup.info with
// status DONE: its presence with that status is what makes the backup
// exist for Barman, so Run calls it only once every other actor has
// returned nil, and it is the last thing a run stores. It first reads
// the stored volumes back as Barman's catalogue lists them, so that
// nothing after the DONE can fail the run (Barman too marks a backup
// DONE only after every step has succeeded: cloud_backup.py).
func manifestWriter(ctx context.Context, opts Options, info *pg.BackupInfo, t *tracker,
	copyStart time.Time, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	log := zerolog.Ctx(ctx)
	log.Info().Msg("Marking all the uploaded archives as 'completed'")
	key := prefix + "/backup.info"
	if err := readBack(ctx, opts.Store, opts.ServerName, opts.BackupID, t.stored(), key); err != nil {
		return err
	}
	log.Info().Msg("Calculating backup statistics")
	info.CopyStats = t.stats(copyStart, time.Now(), opts.Jobs)
	info.Status = pg.StatusDone
	manifest := opts.Manifest
	if manifest == nil {
		manifest = info.Marshal()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	log.Info().Msgf("Uploading '%s'", key)
	if err := opts.Store.Put(ctx, key, manifest); err != nil {
		return fmt.Errorf("uploading backup.info file: %w", err)
	}
	t.storedManifest(key, len(manifest))
	t.progress.reach(markStored)
	return nil
}
