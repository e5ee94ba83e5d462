package actors

// The restore is the backup's engine run the other way, beside it and
// on the same contracts (codecs, stores and their retries, progress):
//
//	catalogue ──backup ID──▶ plan (backup.info, listing: the volumes)
//	    ──volumes──▶ volume readers (-J ranged downloads in flight, each
//	    volume decompressed and read as tar as it streams)
//	    ──members──▶ extraction (files written with their CRC-32C taken,
//	    later members winning) ──▶ check against backup_manifest
//	    ──▶ links, modes, fsync of everything ──▶ global/pg_control last
//
// A check (barman-cloud-backup-verify) is the same run with no
// extraction: it reads every volume and reports every problem, where a
// restore stops at the first.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// RestoreOptions say which backup to read back, from where, and where
// to write it.
type RestoreOptions struct {
	// Store is the source (its Prefix and String are used); Reader reads
	// it (uploaders.ReaderOf).
	Store  uploaders.Store
	Reader uploaders.Reader
	Server string
	// Backup is a backup ID, a backup name, one of Barman's words latest,
	// last, oldest, first, last-failed, or auto (picked by Target).
	Backup string
	Target RecoveryTarget
	// Jobs is the number of parallel downloads; 0 means 2.
	Jobs int
	// ChunkSize is the size of one ranged download in bytes; 0 means
	// 4 MiB. Memory is about (Jobs + 2 per volume read) chunks.
	ChunkSize int64
	// RecoveryDir is where PGDATA is restored; "" only checks the backup
	// and writes nothing.
	RecoveryDir string
	// Tablespaces relocate tablespaces by name (--tablespace
	// NAME:LOCATION); the others go back to backup.info's location.
	Tablespaces map[string]string
	// NoVerify skips the check of the restored files against
	// backup_manifest.
	NoVerify bool
	// PageChecksums, without a RecoveryDir, also checks the data page
	// checksums of every relation file, when the backup's
	// global/pg_control says its cluster had them.
	PageChecksums bool
	// Progress, if set, is updated as the run goes.
	Progress *RestoreProgress
}

// defaultChunkSize is a ranged download's size when RestoreOptions do
// not say: large enough that a request's round trip is small beside its
// transfer, small enough that -J of them in flight fit in memory.
const defaultChunkSize = 4 << 20

// RestoreMemoryLimit is what a restore with jobs downloads needs, in
// bytes: the chunks its downloads budget lets be held (2×jobs+2 of 4 MiB)
// and 40 MiB for the readers' buffers, decoders and the runtime. The
// binary makes it Go's soft memory limit, so garbage does not double the
// heap.
func RestoreMemoryLimit(jobs int) int64 {
	return int64(uploaders.NewDownloads(jobs).Held())*defaultChunkSize + 40<<20
}

// RestorePhase is where a restore is.
type RestorePhase int32

// A restore goes through these phases in order.
const (
	// RestorePlan finds the backup and its volumes.
	RestorePlan RestorePhase = iota
	// RestoreDownload downloads, decompresses and writes the archives.
	RestoreDownload
	// RestoreSync makes the links, sets the modes, syncs every file and
	// writes global/pg_control.
	RestoreSync
	// RestoreDone is the end, whether the run succeeded or not.
	RestoreDone
)

// RestoreProgress is a restore's counters, safe to read from any
// goroutine while it runs.
type RestoreProgress struct {
	phase atomic.Int32
	// Total is the stored bytes of the volumes to read, once planned.
	Total atomic.Int64
	// Downloaded is the stored bytes read so far; Extracted the bytes of
	// tar decompressed from them.
	Downloaded atomic.Int64
	Extracted  atomic.Int64
	// Files counts the regular files written.
	Files atomic.Int64
	// SyncTotal is the files and directories found to sync so far;
	// Synced those synced.
	SyncTotal atomic.Int64
	Synced    atomic.Int64
	// since holds when each phase began, as Unix nanoseconds.
	since [RestoreDone + 1]atomic.Int64
}

// Phase is the current phase.
func (p *RestoreProgress) Phase() RestorePhase { return RestorePhase(p.phase.Load()) }

// Since is when phase began; zero if it has not.
func (p *RestoreProgress) Since(phase RestorePhase) time.Time {
	if ns := p.since[phase].Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (p *RestoreProgress) enter(phase RestorePhase) {
	p.since[phase].Store(time.Now().UnixNano())
	p.phase.Store(int32(phase))
}

// ErrNotEmpty is a destination that holds files: Barman refuses it
// ("Destination X already exists and it is not empty", exit 1).
var ErrNotEmpty = errors.New("destination not empty")

// DamageError is a restore stopped by what the backup holds or lacks:
// its message is the first problem's line; the report has them all.
type DamageError struct {
	First Problem
	Count int
}

func (e *DamageError) Error() string {
	if e.Count > 1 {
		return fmt.Sprintf("%s (and %d more problems, which --json-summary lists)", e.First, e.Count-1)
	}
	return e.First.String()
}

// fatal is the first problem that stops a restore: objects that are no
// volume of the backup are only warned about, as Barman's restore
// ignores them.
func (r *RestoreReport) fatal() error {
	var first *Problem
	n := 0
	for i, p := range r.Problems {
		if p.Kind == "object" {
			continue
		}
		if first == nil {
			first = &r.Problems[i]
		}
		n++
	}
	if first == nil {
		return nil
	}
	return &DamageError{First: *first, Count: n}
}

// Restore reads a backup back from its store: with a RecoveryDir it
// restores it there, as Barman's barman-cloud-restore does (PGDATA in
// RecoveryDir, tablespaces at their locations or relocated, pg_tblspc
// links, an empty pg_wal), every file checked against backup_manifest as
// it is written, everything synced, and global/pg_control written last.
// Without one it only checks the backup, reporting every problem.
//
// A restore returns an error when it did not finish: ErrNoBackup,
// ErrNotEmpty, a *DamageError, or the failure of the store or of the
// local disk; the report says what was read. A check returns an error
// only when the check itself could not be made.
func Restore(ctx context.Context, opts RestoreOptions) (*RestoreReport, error) {
	start := time.Now()
	if opts.Jobs < 1 {
		opts.Jobs = 2
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = defaultChunkSize
	}
	if opts.Progress == nil {
		opts.Progress = &RestoreProgress{}
	}
	p := opts.Progress
	p.enter(RestorePlan)
	defer p.enter(RestoreDone)
	restoring := opts.RecoveryDir != ""
	base := tarball.JoinKey(opts.Store.Prefix(), opts.Server, "base") + "/"
	id, err := resolve(ctx, opts.Reader, base, opts.Server, opts.Backup, opts.Target)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{Server: opts.Server, BackupID: id, Source: opts.Store.String(), Problems: []Problem{}, Objects: []ObjectReport{}}
	folder := base + id + "/"
	listing, err := opts.Reader.ListDir(ctx, folder, "/")
	if err != nil {
		return nil, err
	}
	raw, err := uploaders.ReadSmall(ctx, opts.Reader, folder+"backup.info", infoLimit)
	switch {
	case errors.Is(err, uploaders.ErrNotFound) && restoring:
		// Barman 3.17's words, "does not exists" included.
		return nil, noBackup("Backup %s for server %s does not exists", id, opts.Server)
	case errors.Is(err, uploaders.ErrNotFound) && len(listing.Objects) == 0:
		return nil, noBackup("Backup %s for server %s does not exist", id, opts.Server)
	case errors.Is(err, uploaders.ErrNotFound):
		rep.problem("backup.info", "backup.info", "", "missing: the backup's folder holds %d objects but no backup.info, so Barman's tools do not see the backup", len(listing.Objects))
		rep.finish(start)
		return rep, nil
	case err != nil:
		return nil, err
	}
	info, err := pg.ReadInfo(raw)
	if err != nil {
		if restoring {
			return nil, fmt.Errorf("backup.info of backup %s is unreadable: %w", id, err)
		}
		rep.problem("backup.info", "backup.info", "", "unreadable: %v", err)
		rep.finish(start)
		return rep, nil
	}
	rep.Info, rep.BackupStatus, rep.BackupName = info, info.Status, info.BackupName
	if info.Status != pg.StatusDone {
		rep.problem("backup.info", "backup.info", "", "status is %s, not DONE: Barman's tools neither list nor restore it", info.Status)
	}
	var places *placement
	if restoring {
		if err := rep.fatal(); err != nil {
			return rep, err
		}
		var warnings []string
		if places, warnings, err = placeArchives(opts.RecoveryDir, info, opts.Tablespaces); err != nil {
			return rep, err
		}
		for _, w := range warnings {
			zerologWarn(ctx, w)
		}
		rep.RecoveryDir = places.roots["data"]
		logf(ctx, "Restoring backup %s of server %s into %s", id, opts.Server, rep.RecoveryDir)
	}
	volumes, incomplete := planVolumes(rep, info, folder, listing)
	for _, pr := range rep.Problems {
		if pr.Kind == "object" && restoring {
			zerologWarn(ctx, "Skipping "+pr.String())
		}
	}
	if restoring {
		if err := rep.fatal(); err != nil {
			return rep, err
		}
	}
	for _, v := range volumes {
		p.Total.Add(v.size)
	}
	p.enter(RestoreDownload)
	v := &verifier{opts: &opts, rep: rep, seen: map[string]seenFile{}, failed: incomplete}
	if opts.PageChecksums && !restoring {
		start, err := pg.ParseLSN(info.BeginXLOG)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("page checksums were not judged: backup.info's begin_xlog %q: %v", info.BeginXLOG, err))
		}
		v.pages, v.pageStart = err == nil, start
	}
	var ext *extraction
	if restoring {
		ext = newExtraction(places.roots, p)
		v.sink = ext
	}
	err = v.readVolumes(ctx, volumes)
	rep.DownloadSeconds = time.Since(p.Since(RestoreDownload)).Seconds()
	if err != nil {
		if restoring {
			err = places.incomplete(err)
		}
		return rep, err
	}
	if !restoring {
		v.check(info, true)
		rep.finish(start)
		return rep, nil
	}
	if err := rep.fatal(); err != nil {
		return rep, places.incomplete(err)
	}
	// Even with --no-verify, the backup's backup_label must be there: a
	// restore without it recovers from pg_control's checkpoint, not the
	// backup's start, and may come up inconsistent.
	v.check(info, !opts.NoVerify)
	if err := rep.fatal(); err != nil {
		return rep, places.incomplete(err)
	}
	switch rep.Manifest {
	case "not verified":
		rep.Notes = append(rep.Notes, "--no-verify: the restored files were not checked against backup_manifest")
	case "absent", "stale":
		zerologWarn(ctx, "The backup carries no backup_manifest of its own (a backup by Barman, or by an older barman-cloud-backup): "+
			"the restored files cannot be verified; every archive was read to its clean end")
	}
	if !ext.hasControl {
		return rep, places.incomplete(&DamageError{First: Problem{Kind: "file", Object: "data", Path: controlFile, Message: "missing from the data archive: PostgreSQL cannot start without it"}, Count: 1})
	}
	p.enter(RestoreSync)
	syncStart := time.Now()
	if err := ext.makeLinks(places.roots["data"], places.links, walDirectory(info.Version)); err != nil {
		return rep, places.incomplete(fmt.Errorf("making links: %w", err))
	}
	if err := ext.setDirAttributes(); err != nil {
		return rep, places.incomplete(err)
	}
	if err := syncAll(ctx, places.list, opts.Jobs, p); err != nil {
		return rep, places.incomplete(err)
	}
	if err := ext.writeControl(places.roots["data"]); err != nil {
		return rep, places.incomplete(fmt.Errorf("writing %s: %w", controlFile, err))
	}
	rep.SyncSeconds = time.Since(syncStart).Seconds()
	rep.FilesWritten = p.Files.Load()
	rep.Restored = true
	rep.finish(start)
	return rep, nil
}

// walDirectory is BackupInfo.wal_directory: pg_xlog before PostgreSQL 10.
func walDirectory(version int64) string {
	if version != 0 && version < 100000 {
		return "pg_xlog"
	}
	return "pg_wal"
}

// placement is where each archive of a backup goes.
type placement struct {
	// roots maps an archive ("data", a tablespace OID) to its directory.
	roots map[string]string
	// links maps a tablespace OID to the target of its pg_tblspc link.
	links map[string]string
	// list is the directories, data first, for the sync.
	list []string
}

// placeArchives puts PGDATA in dir and each tablespace at its location,
// or where a --tablespace rule moves it (Python's os.path.realpath of the
// rule, as Barman), and checks that every one is absent or empty, as
// Barman's CloudBackupDownloaderObjectStore.download_backup does. Beyond
// Barman, it refuses two archives in one directory, and makes every
// directory before anything is downloaded, so a destination that cannot
// be written fails before any data lands anywhere. An in-place tablespace
// (a location relative to PGDATA) is in the data archive and needs no
// place. It returns warnings for rules naming no tablespace.
func placeArchives(dir string, info *pg.InfoFile, rules map[string]string) (*placement, []string, error) {
	data, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	pl := &placement{roots: map[string]string{"data": data}, links: map[string]string{}, list: []string{data}}
	owner := map[string]string{data: "PGDATA"}
	used := map[string]bool{}
	for _, t := range info.Tablespaces {
		if !filepath.IsAbs(t.Location) {
			continue
		}
		oid := strconv.FormatUint(uint64(t.OID), 10)
		target := t.Location
		if loc, ok := rules[t.Name]; ok {
			used[t.Name] = true
			if target, err = realpath(loc); err != nil {
				return nil, nil, err
			}
		}
		if other, taken := owner[target]; taken {
			return nil, nil, fmt.Errorf("tablespace %s would be restored into %s, where %s goes: give each its own directory with --tablespace NAME:LOCATION", t.Name, target, other)
		}
		owner[target] = "tablespace " + t.Name
		pl.roots[oid], pl.links[oid] = target, target
		pl.list = append(pl.list, target)
	}
	var warnings []string
	for name := range rules {
		if !used[name] {
			var names []string
			for _, t := range info.Tablespaces {
				names = append(names, t.Name)
			}
			warnings = append(warnings, fmt.Sprintf("--tablespace %s: the backup has no tablespace of that name (its tablespaces: %s); the rule is ignored",
				name, strings.Join(append(names, "none")[:max(1, len(names))], ", ")))
		}
	}
	sort.Strings(warnings)
	for _, d := range pl.list {
		entries, err := os.ReadDir(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("cannot use the destination: %w", err)
		}
		if len(entries) > 0 {
			return nil, nil, &NotEmptyError{Dir: d}
		}
	}
	for _, d := range pl.list {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("cannot use the destination: %w", err)
		}
	}
	return pl, warnings, nil
}

// NotEmptyError is a destination that holds files, in Barman's words;
// errors.Is(err, ErrNotEmpty) holds for it.
type NotEmptyError struct{ Dir string }

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("Destination %s already exists and it is not empty", e.Dir)
}

// Is makes errors.Is(err, ErrNotEmpty) hold.
func (e *NotEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// IncompleteError is a restore that failed after it began writing: Dirs
// are the destinations it left files in, which PostgreSQL cannot start
// (global/pg_control is written last) and a new restore refuses until
// they are emptied.
type IncompleteError struct {
	Err  error
	Dirs []string
}

func (e *IncompleteError) Error() string { return e.Err.Error() }
func (e *IncompleteError) Unwrap() error { return e.Err }

// incomplete wraps err with the destinations that hold files.
func (pl *placement) incomplete(err error) error {
	if err == nil {
		return nil
	}
	var dirs []string
	for _, d := range pl.list {
		if entries, _ := os.ReadDir(d); len(entries) > 0 {
			dirs = append(dirs, d)
		}
	}
	return &IncompleteError{Err: err, Dirs: dirs}
}

// realpath is Python's os.path.realpath: absolute, with the symbolic
// links of the part that exists resolved.
func realpath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if resolved, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(resolved, rest), nil
		}
		if dir == filepath.Dir(dir) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}
