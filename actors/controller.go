package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// control is what the controller works with.
type control struct {
	src      Source
	info     *pg.BackupInfo
	progress *Progress
	journal  *Journal
	plan     *plan
	limits   uploaders.Limits
	// partSize gives the upload part size for the size of the data.
	partSize func(dataSize int64) int64
	// planned, when set, is told the part size once it is chosen, and
	// how many files the sweep counted.
	planned func(partSize, files int64)
}

// stopped is the controller's one message to the sealer: the backup is
// stopped, and here is the backup_label the stop returned (none for a
// backup Barman took, whose data/ holds its own). The sealer seals the
// last volume only once it has this message: labels closed without it
// means the stop failed.
type stopped struct {
	label *tarball.Entry
}

// controller is the checkpoint controller: it starts the backup, sizes
// what is to be copied and publishes the plan (what to copy, the upload
// part size) to the walker, the sealer and the assembler, and stops the
// backup only once the sealer says every file has been read into the
// archives; then it hands the sealer backup_label. Whatever fails, backup
// mode is ended, exactly once: by the stop, or by Abort.
//
// Reading a file after the stop breaks the backup: PostgreSQL's low-level
// API requires the copy to happen between pg_backup_start and
// pg_backup_stop, since WAL replay only repairs changes made before the
// stop. Waiting for the walker (which only lists files) would not do:
// what it listed may still be queued.
func controller(ctx context.Context, c control, copied <-chan struct{}, labels chan<- stopped) error {
	defer close(labels)
	log := zerolog.Ctx(ctx)
	c.progress.enter(PhaseCheckpoint)
	c.progress.reach(markStartAsked)
	layout, err := c.src.Begin(ctx, c.info)
	if err != nil {
		c.src.Abort(ctx)
		return err
	}
	c.progress.reach(markStarted)
	log.Info().Msgf("Backup started in %s", c.progress.Phases().Start.Duration().Round(time.Millisecond))
	c.progress.enter(PhaseCopy)
	total, files, err := sweep(ctx, layout)
	if err != nil {
		c.src.Abort(ctx)
		return err
	}
	c.progress.Estimated.Store(total)
	c.progress.EstimateDone.Store(true)
	size := c.partSize(total)
	log.Debug().Msgf("%d bytes to copy: upload parts of %d bytes", total, size)
	c.plan.publish(layout, size, c.limits)
	if c.planned != nil {
		c.planned(size, files)
	}
	select {
	case <-copied:
	case <-ctx.Done():
		c.src.Abort(ctx)
		return ctx.Err()
	}
	c.progress.enter(PhaseStop)
	c.journal.record(Event{Kind: EventStopRequested})
	cp := c.progress.Phases().Copy
	log.Info().Msgf("Every file is read: %d bytes in %s (%s/s); requesting the backup stop",
		c.progress.Read.Load(), cp.Duration().Round(time.Millisecond), rateText(c.progress.Read.Load(), cp.Duration()))
	c.progress.reach(markStopAsked)
	label, err := c.src.End(ctx, c.info)
	if err != nil {
		c.src.Abort(ctx)
		return err
	}
	c.progress.reach(markStopped)
	c.journal.record(Event{Kind: EventStopped})
	log.Info().Msgf("Backup stopped in %s", c.progress.Phases().Stop.Duration().Round(time.Millisecond))
	c.progress.enter(PhaseFinish)
	var msg stopped
	if len(label) > 0 { // a Barman backup holds its backup_label in data/
		e := labelEntry(layout.PGData, label)
		msg.label = &e
	}
	select {
	case labels <- msg: // buffered: never blocks, but the rule holds
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// rateText is n bytes over d as a rate in MiB per second, for the log.
func rateText(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/d.Seconds()/(1<<20))
}
