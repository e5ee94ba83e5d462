package pg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// ConfigFile is a configuration file outside PGDATA that goes into the
// data archive under its base name.
type ConfigFile struct {
	Kind     string
	Path     string
	Optional bool
}

// Layout is what a backup copies.
type Layout struct {
	PGData string
	// MajorVersion names the tablespace subdirectory to copy (PG_<major>_*).
	MajorVersion string
	// Tablespaces to copy; Location is the directory read from.
	Tablespaces []Tablespace
	ConfigFiles []ConfigFile
	// Live: PGData is a running server's, copied between the start and the
	// stop of the backup, so what PostgreSQL's base backup leaves out of a
	// running cluster is left out (tarball.LiveExcludes). False for the
	// data/ of a backup Barman took, whose backup_label is its own.
	Live bool
	// DataChecksums: the cluster's pages carry checksums (the server's
	// data_checksums, or the backup's global/pg_control). ChecksumsUnknown
	// says why that could not be told, when it could not.
	DataChecksums    bool
	ChecksumsUnknown error
}

// LiveBackup brackets a copy of a running server with the non-exclusive
// backup API on one session.
type LiveBackup struct {
	Conn *Conn
	// Fast asks for an immediate checkpoint at start.
	Fast bool

	started bool
}

// Begin reads the server's metadata into info, starts the backup and
// returns what to copy.
func (l *LiveBackup) Begin(ctx context.Context, info *BackupInfo) (*Layout, error) {
	log := zerolog.Ctx(ctx)
	sysid, err := l.Conn.SystemID(ctx)
	if err != nil {
		return nil, err
	}
	info.SystemID = sysid
	settings, segSize, err := l.Conn.Settings(ctx)
	if err != nil {
		return nil, err
	}
	pgdata := settings["data_directory"]
	if pgdata == "" {
		return nil, fmt.Errorf("cannot read data_directory: the user needs superuser or pg_read_all_settings")
	}
	info.PGData = pgdata
	info.Version = Int64(int64(l.Conn.Version))
	info.XLOGSegmentSize = Int64(segSize)
	info.ConfigFile = settings["config_file"]
	info.HBAFile = settings["hba_file"]
	info.IdentFile = settings["ident_file"]
	if info.IncludedFiles, err = l.Conn.IncludedFiles(ctx); err != nil {
		return nil, err
	}
	if info.Tablespaces, err = l.Conn.Tablespaces(ctx); err != nil {
		return nil, err
	}
	layout := &Layout{PGData: pgdata, MajorVersion: l.Conn.MajorVersion(), Tablespaces: info.Tablespaces, Live: true,
		DataChecksums: settings["data_checksums"] == "on"}
	for _, t := range info.Tablespaces {
		log.Info().Msgf("\t%d, %s, %s", t.OID, t.Name, t.Location)
	}
	for _, cf := range []ConfigFile{
		{Kind: "config_file", Path: info.ConfigFile},
		{Kind: "hba_file", Path: info.HBAFile},
		{Kind: "ident_file", Path: info.IdentFile, Optional: true},
	} {
		// Barman compares by string prefix; so do we, to copy the same files.
		if cf.Path != "" && !strings.HasPrefix(cf.Path, pgdata) {
			layout.ConfigFiles = append(layout.ConfigFiles, cf)
		}
	}
	var outside []string
	for _, f := range info.IncludedFiles {
		if !strings.HasPrefix(f, pgdata) {
			outside = append(outside, f)
		}
	}
	if len(outside) > 0 {
		log.Warn().Msgf("The usage of include directives is not supported for files that reside outside PGDATA.\n"+
			"Please manually backup the following files:\n\t%s\n", strings.Join(outside, "\n\t"))
	}

	log.Info().Msgf("Starting backup '%s'", info.ID)
	start, err := l.Conn.StartBackup(ctx, "Barman backup cloud "+info.ID, l.Fast)
	if err != nil {
		return nil, err
	}
	l.started = true
	lsn, err := ParseLSN(start.LSN)
	if err != nil {
		return nil, err
	}
	info.Status = StatusStarted
	info.BeginTime = &start.Time
	info.BeginXLOG = start.LSN
	info.Timeline = Int64(start.Timeline)
	wal, off := WALFileName(lsn, start.Timeline, segSize)
	info.BeginWAL, info.BeginOffset = wal, Int64(off)
	return layout, nil
}

// End stops the backup, records its end in info, creates the restore
// point Barman creates, and returns the backup_label content.
func (l *LiveBackup) End(ctx context.Context, info *BackupInfo) ([]byte, error) {
	log := zerolog.Ctx(ctx)
	log.Info().Msgf("Stopping backup '%s'", info.ID)
	stop, err := l.Conn.StopBackup(ctx)
	if err != nil {
		return nil, err
	}
	l.started = false
	lsn, err := ParseLSN(stop.LSN)
	if err != nil {
		return nil, err
	}
	info.BackupLabel = &stop.Label
	info.EndTime = &stop.Time
	info.EndXLOG = stop.LSN
	wal, off := WALFileName(lsn, stop.Timeline, *info.XLOGSegmentSize)
	info.EndWAL, info.EndOffset = wal, Int64(off)
	// The backup is complete from here on: as in Barman, what follows
	// cannot fail it. No WAL switch either: on a primary pg_backup_stop has
	// switched already, and a standby can neither switch WAL nor write a
	// restore point (its WAL is the primary's).
	standby, err := l.Conn.InRecovery(ctx)
	switch {
	case err != nil:
		log.Warn().Msgf("no restore point: cannot tell whether the server is a standby: %v", err)
	case standby:
		log.Info().Msg("Backup taken from a standby: no restore point, which only a primary can write")
	default:
		name := "barman_" + info.ID
		if err := l.Conn.CreateRestorePoint(ctx, name); err != nil {
			log.Warn().Msgf("creating restore point '%s': %v", name, err)
		} else {
			log.Info().Msgf("Restore point '%s' successfully created", name)
		}
	}
	return []byte(stop.Label), nil
}

// Abort ends backup mode if a failure left it open. It uses its own
// deadline because the run's context is usually cancelled by then.
func (l *LiveBackup) Abort(ctx context.Context) {
	if !l.started {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.Conn.AbortBackup(ctx); err != nil {
		// Closing the session aborts the backup anyway.
		zerolog.Ctx(ctx).Debug().Msgf("ending backup mode: %v", err)
	} else {
		zerolog.Ctx(ctx).Debug().Msg("Backup mode ended without waiting for the WAL archive")
	}
	l.started = false
}
