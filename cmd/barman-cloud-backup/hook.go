package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// unrecoverableError is a hook failure that retrying cannot mend; Barman
// stops retrying a post_backup_retry_script on exit code 63.
type unrecoverableError struct{ msg string }

func (e *unrecoverableError) Error() string { return e.msg }

func unrecoverable(format string, args ...any) error {
	return &unrecoverableError{msg: fmt.Sprintf(format, args...)}
}

// hookMode tells whether Barman runs us as a hook, as Barman decides it:
// both BARMAN_HOOK and BARMAN_PHASE set. Only the post phase of the backup
// hooks is supported.
func hookMode() (bool, error) {
	hook, hasHook := os.LookupEnv("BARMAN_HOOK")
	phase, hasPhase := os.LookupEnv("BARMAN_PHASE")
	if !hasHook || !hasPhase {
		return false, nil
	}
	if (hook != "backup_script" && hook != "backup_retry_script") || phase != "post" {
		return false, fmt.Errorf("barman-cloud-backup called as unsupported hook script: %s_%s", phase, hook)
	}
	return true, nil
}

// uploadBarmanBackup uploads the backup Barman just took, from its backup
// directory, through the same engine as a live backup.
func uploadBarmanBackup(ctx context.Context, r *runInfo, store uploaders.Store, codec tarball.Codec) (*actors.Result, error) {
	cfg := r.cfg
	if cfg.BackupName != "" {
		return nil, errors.New("Cannot set backup name when running as a hook script")
	}
	dir, ok := os.LookupEnv("BARMAN_BACKUP_DIR")
	if !ok {
		return nil, errors.New("BARMAN_BACKUP_DIR environment variable not set")
	}
	if _, ok := os.LookupEnv("BARMAN_BACKUP_ID"); !ok {
		return nil, errors.New("BARMAN_BACKUP_ID environment variable not set")
	}
	if status := os.Getenv("BARMAN_STATUS"); status != pg.StatusDone {
		return nil, unrecoverable("backup in '%s' has status '%s' (status should be: %s)", dir, status, pg.StatusDone)
	}
	// Barman 3.13.2 and later keep backup.info under SERVER/meta/ and
	// say where; older servers leave it in the backup directory.
	backup, err := pg.LoadBarmanBackup(dir, os.Getenv("BARMAN_BACKUP_INFO_PATH"))
	if err != nil {
		return nil, unrecoverable("%v", err)
	}
	if backup.Compression != "" {
		// Barman's tar-format backups hold no data/ directory to upload;
		// retrying cannot change that.
		return nil, unrecoverable("backup in '%s' is compressed (%s): a compressed Barman backup cannot be uploaded",
			dir, backup.Compression)
	}
	opts := r.engineOptions(ctx, store, codec) // the backup ID is BARMAN_BACKUP_ID
	opts.Manifest = backup.Raw
	res, err := actors.Run(ctx, backup, opts)
	var pages *actors.PageChecksumError
	if errors.As(err, &pages) {
		// The copy on Barman's disk stays as it is: a retry would fail
		// the same way.
		return nil, unrecoverable("%v", pages)
	}
	if errors.Is(err, actors.ErrAlreadyStored) {
		// An earlier attempt stored it: success, or Barman would rerun
		// the retry script forever (barman/hooks.py stops on 0, 62, 63).
		zerolog.Ctx(ctx).Info().Msgf("Backup %s is already in the destination, with status DONE: nothing to upload", r.id)
		return nil, nil
	}
	return res, err
}
