package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// manifestWriter waits until every object is stored, then records the
// statistics and uploads backup.info with status DONE: its presence with
// that status is what makes the backup exist for Barman.
func manifestWriter(ctx context.Context, opts Options, info *pg.BackupInfo, t *tracker,
	copyStart time.Time, prefix string, finished <-chan struct{}) error {
	select {
	case <-finished:
	case <-ctx.Done():
		return ctx.Err()
	}
	log := zerolog.Ctx(ctx)
	log.Info().Msg("Marking all the uploaded archives as 'completed'")
	log.Info().Msg("Calculating backup statistics")
	info.CopyStats = t.stats(copyStart, time.Now(), opts.Jobs)
	info.Status = pg.StatusDone
	manifest := opts.Manifest
	if manifest == nil {
		manifest = info.Marshal()
	}
	key := prefix + "/backup.info"
	log.Info().Msgf("Uploading '%s'", key)
	if err := opts.Store.Put(ctx, key, manifest); err != nil {
		return fmt.Errorf("uploading backup.info file: %w", err)
	}
	t.storedManifest(key, len(manifest))
	t.progress.reach(markStored)
	return readBack(ctx, opts.Store, opts.ServerName, opts.BackupID, t.stored())
}
