package main

import (
	"context"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Options say what to verify, where, and how.
type Options struct {
	// Store is the source; Reader reads it (uploaders.ReaderOf).
	Store  uploaders.Store
	Reader uploaders.Reader
	Server string
	// Backup is a backup ID, a backup name, or Barman's latest, last,
	// oldest, first.
	Backup string
	// Jobs is the number of parallel downloads; 0 means 2.
	Jobs int
	// CheckWAL also checks the WAL archive.
	CheckWAL bool
	// ChunkSize is the size of one ranged download; 0 means 4 MiB.
	ChunkSize int64
}

// verifyBackup is a restore that writes nothing (actors.Restore without a
// recovery directory), then, with --check-wal, a look at the WAL archive.
// Damage is reported in the report; an error is returned only when the
// check itself could not be made (the cloud does not answer, the backup
// does not exist).
func verifyBackup(ctx context.Context, opts Options) (*actors.RestoreReport, error) {
	rep, err := actors.Restore(ctx, actors.RestoreOptions{Store: opts.Store, Reader: opts.Reader, Server: opts.Server,
		Backup: opts.Backup, Jobs: opts.Jobs, ChunkSize: opts.ChunkSize, PageChecksums: true})
	if err != nil {
		return nil, err
	}
	if opts.CheckWAL && rep.Info != nil {
		if err := checkWAL(ctx, opts.Reader, tarball.JoinKey(opts.Store.Prefix(), opts.Server, "wals")+"/", rep.Info, rep); err != nil {
			return nil, err
		}
		rep.Sound = len(rep.Problems) == 0
	}
	return rep, nil
}
