package actors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// backupIDPattern is Barman's is_backup_id (barman/utils.py).
var backupIDPattern = regexp.MustCompile(`^\d{8}T\d{6}$`)

// ErrNoBackup is a backup the source does not hold, or no backup
// matching what was asked; Barman exits 1 for it. errors.Is finds it in
// a NoBackupError.
var ErrNoBackup = errors.New("backup does not exist")

// NoBackupError says which backup is not there, in Barman's words.
type NoBackupError struct {
	Msg string
	// Unknown is a backup name no backup has, or one that several have:
	// Barman's parse_backup_id raises ValueError there, which
	// barman-cloud-restore's catch-all turns into exit 4.
	Unknown bool
}

func (e *NoBackupError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNoBackup) hold.
func (e *NoBackupError) Is(target error) bool { return target == ErrNoBackup }

func noBackup(format string, args ...any) error {
	return &NoBackupError{Msg: fmt.Sprintf(format, args...)}
}

// RecoveryTarget is what barman-cloud-restore's BACKUP_ID "auto" picks a
// backup by (--target-tli, --target-lsn, --target-time); empty fields are
// not given.
type RecoveryTarget struct {
	// TLI is a timeline number, or "latest" (the highest timeline in the
	// WAL archive); "current" needs a backup and is refused with auto.
	TLI string
	// LSN is PostgreSQL's X/Y notation.
	LSN string
	// Time is a date and time, with or without a zone (local time then),
	// as Barman's load_datetime_tz reads it.
	Time string
}

// catalogEntry is one backup of the catalogue with its backup.info.
type catalogEntry struct {
	id   string
	info *pg.InfoFile
}

// resolve turns what the user named into a backup ID, as Barman 3.17's
// barman-cloud-restore does (cloud_restore.py main, CloudBackupCatalog.
// parse_backup_id, utils.get_backup_id_using_shortcut): an ID as it is;
// latest/last and oldest/first the newest and oldest DONE backup,
// last-failed the newest FAILED one; auto the backup the recovery target
// needs; else the backup whose backup_name it is.
func resolve(ctx context.Context, r uploaders.Reader, base, server, name string, target RecoveryTarget) (string, error) {
	if backupIDPattern.MatchString(name) {
		return name, nil
	}
	backups, err := loadCatalog(ctx, r, base)
	if err != nil {
		return "", err
	}
	newestWith := func(status string, newest bool) string {
		order := backups
		if newest {
			order = reversed(backups)
		}
		for _, b := range order {
			if b.info.Status == status {
				return b.id
			}
		}
		return ""
	}
	switch name {
	case "latest", "last", "oldest", "first", "last-failed":
		id := ""
		switch name {
		case "latest", "last":
			id = newestWith(pg.StatusDone, true)
		case "oldest", "first":
			id = newestWith(pg.StatusDone, false)
		default:
			id = newestWith(pg.StatusFailed, true)
		}
		if id == "" {
			return "", noBackup("No backup of server %s to be the %s one", server, name)
		}
		return id, nil
	case "auto":
		return pickForTarget(ctx, r, base, backups, target)
	}
	var found []string
	for _, b := range backups {
		if b.info.BackupName == name {
			found = append(found, b.id)
		}
	}
	switch len(found) {
	case 0:
		return "", &NoBackupError{Msg: fmt.Sprintf("Unknown backup '%s' for server '%s'", name, server), Unknown: true}
	case 1:
		return found[0], nil
	}
	return "", &NoBackupError{Msg: fmt.Sprintf("Multiple backups found matching name '%s' (try using backup ID instead): %s",
		name, strings.Join(found, " ")), Unknown: true}
}

// loadCatalog reads the backup.info of every backup under base, oldest
// first; a folder without one is left out, as Barman's get_backup_list
// does.
func loadCatalog(ctx context.Context, r uploaders.Reader, base string) ([]catalogEntry, error) {
	top, err := r.ListDir(ctx, base, "/")
	if err != nil {
		return nil, err
	}
	var backups []catalogEntry
	for _, p := range top.Prefixes {
		id := strings.TrimSuffix(strings.TrimPrefix(p, base), "/")
		raw, err := uploaders.ReadSmall(ctx, r, base+id+"/backup.info", infoLimit)
		if errors.Is(err, uploaders.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info, err := pg.ReadInfo(raw)
		if err != nil {
			// Barman warns and goes on ("Unable to open backup.info
			// file"): one damaged backup does not hide the others.
			logf(ctx, "Unable to open backup.info file for %s: %v", id, err)
			continue
		}
		backups = append(backups, catalogEntry{id, info})
	}
	sort.Slice(backups, func(i, j int) bool { return backups[i].id < backups[j].id })
	return backups, nil
}

func reversed(b []catalogEntry) []catalogEntry {
	out := make([]catalogEntry, len(b))
	for i, e := range b {
		out[len(b)-1-i] = e
	}
	return out
}

// pickForTarget is auto's choice (barman/utils.py
// get_backup_id_from_target_time, _lsn, _tli, get_last_backup_id): the
// newest backup that ended at or before the target time or LSN, on the
// target timeline if one is given; else the newest on that timeline; else
// the newest. Only DONE backups are candidates: Barman 3.17 also picks a
// FAILED one, whose restore then fails on its missing archives.
func pickForTarget(ctx context.Context, r uploaders.Reader, base string, backups []catalogEntry, target RecoveryTarget) (string, error) {
	var tli int64
	hasTLI := target.TLI != ""
	switch {
	case !hasTLI:
	case target.TLI == "current":
		return "", &NoBackupError{Msg: "'current' is not a valid timeline keyword when recovering without a backup_id", Unknown: true}
	case target.TLI == "latest":
		var err error
		if tli, err = latestArchivedTimeline(ctx, r, strings.TrimSuffix(base, "base/")+"wals/"); err != nil {
			return "", err
		}
	default:
		n, err := strconv.ParseInt(target.TLI, 10, 64)
		if err != nil || n < 1 {
			return "", &NoBackupError{Msg: fmt.Sprintf("'%s' is not a valid timeline keyword", target.TLI), Unknown: true}
		}
		tli = n
	}
	var endsBefore func(info *pg.InfoFile) bool
	switch {
	case target.Time != "":
		at, err := ParseTargetTime(target.Time)
		if err != nil {
			return "", &NoBackupError{Msg: fmt.Sprintf("Unable to parse the target time parameter '%s': %v", target.Time, err), Unknown: true}
		}
		endsBefore = func(info *pg.InfoFile) bool { return !info.EndTime.IsZero() && !info.EndTime.After(at) }
	case target.LSN != "":
		at, err := pg.ParseLSN(target.LSN)
		if err != nil {
			return "", &NoBackupError{Msg: err.Error(), Unknown: true}
		}
		endsBefore = func(info *pg.InfoFile) bool {
			end, err := pg.ParseLSN(info.EndXLOG)
			return err == nil && end <= at
		}
	default:
		endsBefore = func(*pg.InfoFile) bool { return true }
	}
	for _, b := range reversed(backups) {
		if b.info.Status != pg.StatusDone || !endsBefore(b.info) || (hasTLI && b.info.Timeline != tli) {
			continue
		}
		return b.id, nil
	}
	return "", noBackup("Cannot find any candidate backup for recovery.")
}

// latestArchivedTimeline is the timeline of the highest-named file of the
// WAL archive (CloudBackupCatalog.get_latest_archived_wals_info).
func latestArchivedTimeline(ctx context.Context, r uploaders.Reader, wals string) (int64, error) {
	l, err := r.ListDir(ctx, wals, "")
	if err != nil {
		return 0, err
	}
	var best int64
	for _, o := range l.Objects {
		name := o.Key[strings.LastIndexByte(o.Key, '/')+1:]
		if len(name) < 8 {
			continue
		}
		if tli, err := strconv.ParseInt(name[:8], 16, 64); err == nil && tli > best {
			best = tli
		}
	}
	if best == 0 {
		return 0, noBackup("Cannot find any candidate backup for recovery.")
	}
	return best, nil
}

// ParseTargetTime reads --target-time as Barman's load_datetime_tz does
// for the forms people write: a date and a time ("T" or a space between),
// optional fractions of a second, optional zone (Z, +HH, +HHMM, +HH:MM);
// without a zone, local time.
func ParseTargetTime(s string) (time.Time, error) {
	s = strings.TrimSpace(strings.Replace(s, "T", " ", 1))
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z0700",
		"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999 Z07:00", "2006-01-02 15:04:05.999999999 Z0700",
		"20060102 150405Z07:00", "20060102 150405Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02 15:04", "2006-01-02", "20060102 150405"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date and time such as \"2026-12-06 14:08:34\" or \"2026-12-06T14:08:34+01:00\"")
}
