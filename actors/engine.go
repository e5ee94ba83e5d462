// Package actors is the backup engine: independent goroutine actors
// connected by bounded channels and run by one errgroup, so the first
// error stops them all and backpressure keeps memory flat.
//
//	controller ──layout──▶ walker ──entries──▶ sealer ──blocks──▶ compressor pool
//	  ▲    │                 └─────walked─────▶ │ └─────ordered──▶ assembler ──chunks──▶ uploader pool
//	  │    └─────────stopped (label)──────────▶ │                                            │
//	  └──────────────────────copied─────────────┘                  every actor returned nil ─┘
//	                                                                         ▼
//	                                                               manifest writer (DONE)
//
// The controller stops the backup only when the sealer, which reads the
// files, has read the last of them (copied); compression and uploads go on
// after the stop, reading nothing from PGDATA. Each stream ends with an
// explicit end message, and backup.info is written DONE only once every
// actor has returned nil: crew.go has the rules.
package actors

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Source brackets the copy: a live server in backup mode, or a backup
// Barman already took.
type Source interface {
	// Begin records the start in info and returns what to copy.
	Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error)
	// End records the end in info and returns backup_label's content.
	End(ctx context.Context, info *pg.BackupInfo) ([]byte, error)
	// Abort leaves backup mode after a failure; safe to call at any time.
	Abort(ctx context.Context)
}

// Options configure one backup run.
type Options struct {
	Store      uploaders.Store
	ServerName string
	// BackupID names the backup; Barman's format is YYYYMMDDTHHMMSS.
	BackupID   string
	BackupName string
	Codec      tarball.Codec
	// MaxArchiveSize starts a new volume of an archive (data_0001.tar...)
	// once the current one is larger, in stored bytes.
	MaxArchiveSize int64
	// Jobs is the number of concurrent uploads.
	Jobs int
	// Compressors is the compressor pool size; 0 means one per CPU.
	Compressors int
	// BlockSize is the unit of parallel compression; 0 means 1 MiB.
	BlockSize int
	// Manifest, when set, is uploaded as backup.info unchanged: the
	// backup is one Barman took, and its backup.info is Barman's. A failed
	// upload then leaves no backup.info at all, as in Barman's hook mode.
	Manifest []byte
	// Progress, when set, is kept up to date as the run goes.
	Progress *Progress
	// Journal, when set, records each file read and the stop request.
	Journal *Journal
	// MinChunkSize is --min-chunk-size: the smallest upload part, in
	// bytes (Barman 3.9); 0 leaves it to the provider.
	MinChunkSize int64
	// MaxBandwidth is --max-bandwidth: bytes per second over all upload
	// workers together (Barman 3.10); 0 is no limit.
	MaxBandwidth int64
	// MemoryLimit, when set, is given the run's memory budget once the
	// part size is known (debug.SetMemoryLimit in the binary).
	MemoryLimit func(bytes int64)
	// Pages is what the copy does about data page checksums
	// (--page-checksums); what it found is in Progress.Pages.
	Pages PagePolicy
}

// StoredObject is one object a run wrote.
type StoredObject struct {
	Key  string
	Size int64
}

// Result is what a run produced.
type Result struct {
	Info *pg.BackupInfo
	// Objects are the objects written, backup.info last.
	Objects []StoredObject
	// Bytes is the total stored size of the volumes.
	Bytes int64
}

// FailedError is a backup that started and then failed; backup.info says
// so. Barman exits 1 for it.
type FailedError struct{ Err error }

func (e *FailedError) Error() string { return e.Err.Error() }
func (e *FailedError) Unwrap() error { return e.Err }

// MemoryBudget is the memory a run needs by design, in bytes: one upload
// part of partSize bytes per upload worker plus one, the 1 MiB block
// buffers (4 a compressor, and 4), what the codec keeps between blocks
// (tarball.Codec.Memory), the records of files (bytesPerFile for each),
// and 24 MiB for the rest of the program and the Go runtime's own (about
// 12 MiB of it at -J 2). It is the garbage collector's soft limit
// (Options.MemoryLimit), so the heap stays near what is really held.
// Without the codec's share, bzip2's encoders (5 MiB each) left the heap
// above its goal the whole run: 676 collections in 18 s, 5% more CPU;
// without the files', 151,000 files made hundreds of collections a second
// while backup_manifest was written.
func MemoryBudget(jobs, compressors int, partSize int64, codec tarball.Codec, files int64) int64 {
	if compressors < 1 {
		compressors = runtime.GOMAXPROCS(0)
	}
	return int64(jobs+1)*partSize + int64(4*compressors+4)<<20 + codec.Memory(compressors) + files*bytesPerFile + 24<<20
}

// bytesPerFile is what the run holds for each file until backup_manifest
// is written after the stop: its record (62 bytes with a pgbench path, go
// test -bench BenchmarkManifestBuilderMemory ./pg/), and as much again so
// that the heap's goal grows with it as with everything else.
const bytesPerFile = 128

// Run takes one backup from src into opts.Store.
func Run(ctx context.Context, src Source, opts Options) (*Result, error) {
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	if opts.Compressors < 1 {
		opts.Compressors = runtime.GOMAXPROCS(0)
	}
	if opts.BlockSize < 1 {
		opts.BlockSize = 1 << 20
	}
	limits := opts.Store.Limits()
	maxSize := min(opts.MaxArchiveSize, limits.MaxObjectSize)
	info := &pg.BackupInfo{ID: opts.BackupID, ServerName: "cloud", BackupName: opts.BackupName}
	prefix := tarball.JoinKey(opts.Store.Prefix(), opts.ServerName, "base", opts.BackupID)
	release, err := claim(ctx, opts.Store, prefix, opts.BackupID, opts.Manifest != nil)
	if err != nil {
		return nil, err
	}
	defer release()
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	progress := opts.Progress
	defer progress.enter(PhaseDone)
	tracker := newTracker(opts.Store, progress)
	copyStart := time.Now()

	pl := newPlan()
	walked := make(chan struct{})
	copied := make(chan struct{})
	labels := make(chan stopped, 1)
	entries := make(chan tarball.Entry, 128)
	// Memory is bounded here: block buffers for what the compressor pool
	// and the ordered queue can hold, and one upload chunk per upload
	// worker plus the one being filled, whatever the database size.
	blocks := make(chan *blockJob, opts.Compressors)
	ordered := make(chan *blockJob, 2*opts.Compressors+2)
	chunks := make(chan *uploadJob)
	blockBufs := newBuffers(cap(blocks)+cap(ordered)+opts.Compressors+2, opts.BlockSize)
	chunkBufs := newBuffers(opts.Jobs+1, 0) // sized by the assembler from the plan

	crew, gctx := newCrew(ctx)
	c := control{src: src, info: info, progress: progress, journal: opts.Journal, plan: pl, limits: limits,
		partSize: func(dataSize int64) int64 { return PartSize(maxSize, dataSize, opts.MinChunkSize, limits) },
		planned: func(partSize, files int64) {
			if opts.MemoryLimit != nil {
				opts.MemoryLimit(MemoryBudget(opts.Jobs, opts.Compressors, partSize, opts.Codec, files))
			}
		}}
	crew.Go(func() error { return controller(gctx, c, copied, labels) })
	crew.Go(func() error { return walker(gctx, pl, walked, entries) })
	s := &sealer{codec: opts.Codec, maxSize: maxSize, blockSize: opts.BlockSize, prefix: prefix,
		bufs: blockBufs, progress: progress, journal: opts.Journal, plan: pl,
		info: info, manifest: newBackupManifest(opts.Manifest != nil),
		pages: pageChecks{policy: opts.Pages, tally: &progress.Pages}}
	crew.Go(func() error { return s.run(gctx, entries, walked, copied, labels, blocks, ordered) })
	crew.Go(func() error { return compressorPool(gctx, opts.Codec, opts.Compressors, blocks) })
	crew.Go(func() error {
		return assembler(gctx, tracker, opts.Codec, pl, blockBufs, chunkBufs, ordered, chunks)
	})
	crew.Go(func() error {
		return uploaderPool(gctx, tracker, opts.Jobs, opts.MaxBandwidth, pl, chunkBufs, chunks)
	})
	err = crew.Wait()
	if err == nil {
		// Every actor returned nil: the backup is stopped and every
		// volume stored whole. Only now is it DONE.
		err = manifestWriter(ctx, opts, info, tracker, copyStart, prefix)
	}
	if err == nil {
		logEnd(ctx, info, copyStart)
		return &Result{Info: info, Objects: tracker.stored(), Bytes: tracker.bytes()}, nil
	}
	return nil, fail(ctx, opts, info, tracker, prefix, err)
}

// fail cleans up after a failed run: no multipart upload is left open and
// backup.info records the failure, as Barman's does.
func fail(ctx context.Context, opts Options, info *pg.BackupInfo, t *tracker, prefix string, err error) error {
	log := zerolog.Ctx(ctx)
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget(ctx, time.Minute, 15*time.Second))
	defer cancel()
	t.abortAll(cleanup)
	msg := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if ctx.Err() != nil {
		msg = "interrupted: " + msg
	}
	if opts.Manifest != nil {
		log.Error().Msgf("Backup upload failed uploading data (%s)", msg)
		return &FailedError{Err: err}
	}
	log.Error().Msgf("Backup failed uploading data (%s)", msg)
	info.Status = pg.StatusFailed
	info.Error = fmt.Sprintf("failure uploading data (%s)", msg)
	key := prefix + "/backup.info"
	if perr := opts.Store.Put(cleanup, key, info.Marshal()); perr != nil {
		log.Error().Msgf("Backup failed uploading backup.info file (%v)", perr)
	}
	return &FailedError{Err: err}
}

// cleanupBudget is how long the clean-up after a failure may take: full
// when the run failed on its own, short when it was interrupted, so a
// store that no longer answers cannot keep an interrupted process alive
// past a service manager's grace period (Kubernetes' default is 30 s:
// the aborts and backup.info get 15 s, the lock 10 s). The retries of
// each call stop at the deadline.
func cleanupBudget(ctx context.Context, full, interrupted time.Duration) time.Duration {
	if ctx.Err() != nil {
		return interrupted
	}
	return full
}

func logEnd(ctx context.Context, info *pg.BackupInfo, start time.Time) {
	log := zerolog.Ctx(ctx)
	if info.EndOffset != nil {
		log.Info().Msgf("Backup end at LSN: %s (%s, %08X)", info.EndXLOG, info.EndWAL, *info.EndOffset)
	}
	log.Info().Msgf("Backup completed (start time: %s, elapsed time: %s)",
		start.Format("2006-01-02 15:04:05.000000"), time.Since(start).Round(time.Second))
}
