package actors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Problem is one thing found wrong with the backup.
type Problem struct {
	// Kind is a stable word for monitoring: "backup.info", "object",
	// "archive", "manifest", "file", "page", "wal".
	Kind string `json:"kind"`
	// Object is the object's name in the backup's folder, if one.
	Object string `json:"object,omitempty"`
	// Path is the file's path as backup_manifest records it, if one.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String is the problem's line: where, then what.
func (p Problem) String() string {
	var where []string
	if p.Object != "" {
		where = append(where, p.Object)
	}
	if p.Path != "" {
		where = append(where, p.Path)
	}
	if len(where) == 0 {
		where = append(where, p.Kind)
	}
	return strings.Join(where, ": ") + ": " + p.Message
}

// ObjectReport is what reading one archive volume found.
type ObjectReport struct {
	Name string `json:"name"`
	// Size is the stored (compressed) size in bytes.
	Size  int64  `json:"size"`
	Codec string `json:"codec"`
	// Members and TarBytes are the tar members and tar stream bytes read.
	Members  int   `json:"members"`
	TarBytes int64 `json:"tar_bytes"`
	// OK is false when the volume could not be read to a clean end.
	OK bool `json:"ok"`
}

// RestoreReport is what reading a backup back found: what was read,
// and every problem, with the files written when it was a restore.
type RestoreReport struct {
	Server       string `json:"server"`
	BackupID     string `json:"backup_id"`
	BackupName   string `json:"backup_name,omitempty"`
	Source       string `json:"source"`
	BackupStatus string `json:"backup_status"`
	// Sound is true when no problem was found.
	Sound bool `json:"sound"`
	// Manifest is "checked", "absent", "stale" (another backup's, copied
	// from PGDATA by Barman) or "damaged".
	Manifest string         `json:"manifest"`
	Objects  []ObjectReport `json:"objects"`
	// Files is the number of regular files read; FilesChecked those
	// checked against backup_manifest.
	Files        int `json:"files"`
	FilesChecked int `json:"files_checked"`
	// ManifestFiles is the number of files backup_manifest lists.
	ManifestFiles int   `json:"manifest_files"`
	StoredBytes   int64 `json:"stored_bytes"`
	TarBytes      int64 `json:"tar_bytes"`
	// WALChecked tells whether --check-wal ran; WALSegments is how many
	// segments the backup needs.
	WALChecked  bool `json:"wal_checked"`
	WALSegments int  `json:"wal_segments,omitempty"`
	// PageChecksums is "checked" when the backup's cluster had data
	// checksums (its global/pg_control says so) and the pages of its
	// relation files were checked, "off" when it had none, "" when they
	// were not checked; PagesChecked counts the pages compared,
	// PageFailures those that differed.
	PageChecksums string    `json:"page_checksums,omitempty"`
	PagesChecked  int64     `json:"pages_checked,omitempty"`
	PageFailures  int64     `json:"page_failures,omitempty"`
	Problems      []Problem `json:"problems"`
	// Notes are facts worth knowing that are not damage.
	Notes   []string `json:"notes,omitempty"`
	Seconds float64  `json:"seconds"`
	// RecoveryDir is where a restore wrote the backup ("" for a check);
	// Restored is true once it finished, global/pg_control written last.
	RecoveryDir string `json:"recovery_dir,omitempty"`
	Restored    bool   `json:"restored"`
	// FilesWritten counts the regular files a restore wrote.
	FilesWritten int64 `json:"files_written,omitempty"`
	// DownloadSeconds and SyncSeconds are the restore's phases: reading
	// and writing the archives, then links, modes and fsync.
	DownloadSeconds float64 `json:"download_seconds,omitempty"`
	SyncSeconds     float64 `json:"sync_seconds,omitempty"`
	// Info is the backup's backup.info.
	Info *pg.InfoFile `json:"-"`
}

// Problem adds a problem found outside the archives (the WAL archive's).
func (r *RestoreReport) Problem(kind, object, path, format string, args ...any) {
	r.problem(kind, object, path, format, args...)
}

func (r *RestoreReport) problem(kind, object, path, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Kind: kind, Object: object, Path: path, Message: fmt.Sprintf(format, args...)})
}

// infoLimit bounds the backup.info read into memory.
const infoLimit = 16 << 20

func (r *RestoreReport) finish(start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	r.Sound = len(r.Problems) == 0
}

// planVolumes matches the backup folder's objects with the archives
// backup.info expects, as Barman's restore does (cloud.py,
// get_backup_files): "data" and one archive per tablespace, each a first
// volume BASE.tar[.EXT] and further volumes BASE_NNNN.tar[.EXT]. It reports
// what a restore would miss or trip on, and returns the volumes to read and
// the archives that lack one.
func planVolumes(rep *RestoreReport, info *pg.InfoFile, folder string, listing uploaders.Listing) ([]storedVolume, map[string]bool) {
	incomplete := map[string]bool{}
	expected := map[string]string{"data": "PGDATA"}
	order := []string{"data"}
	for _, t := range info.Tablespaces {
		if !filepath.IsAbs(t.Location) {
			// In place (allow_in_place_tablespaces): its files are in
			// PGDATA's archive, under pg_tblspc/OID.
			continue
		}
		oid := strconv.FormatUint(uint64(t.OID), 10)
		expected[oid] = "tablespace " + t.Name
		order = append(order, oid)
	}
	byArchive := map[string]map[int][]storedVolume{}
	for _, o := range listing.Objects {
		name := strings.TrimPrefix(o.Key, folder)
		if name == "backup.info" {
			continue
		}
		base, n, ext, ok := tarball.SplitVolumeName(name)
		if !ok || expected[base] == "" {
			rep.problem("object", name, "", "not a volume of any archive backup.info lists (%d bytes)", o.Size)
			continue
		}
		codec, known := tarball.CodecByExt(ext)
		if !known {
			rep.problem("object", name, "", "unknown extension %q: Barman's restore skips the volume and the archive is incomplete", ext)
			continue
		}
		if byArchive[base] == nil {
			byArchive[base] = map[int][]storedVolume{}
		}
		byArchive[base][n] = append(byArchive[base][n], storedVolume{name: name, key: o.Key, archive: base, number: n, size: o.Size, codec: codec})
	}
	for _, p := range listing.Prefixes {
		rep.problem("object", strings.TrimPrefix(p, folder), "", "a folder inside the backup's folder, which no Barman tool reads")
	}
	var volumes []storedVolume
	codecs := map[string]bool{}
	for _, archive := range order {
		got := byArchive[archive]
		if len(got[0]) == 0 {
			incomplete[archive] = true
			rep.problem("archive", archive+".tar", "", "missing: no first volume of the archive of %s (%s.tar[.gz|.bz2|...])", expected[archive], archive)
		}
		last := -1
		for n := range got {
			last = max(last, n)
		}
		for n := 0; n <= last; n++ {
			ps := got[n]
			switch {
			case len(ps) == 0 && n > 0:
				incomplete[archive] = true
				rep.problem("archive", tarball.VolumeName(archive, n, ""), "", "missing: volume %d of the archive of %s, between volumes that exist", n, expected[archive])
			case len(ps) > 1:
				var names []string
				for _, p := range ps {
					names = append(names, p.name)
				}
				rep.problem("archive", ps[0].name, "", "volume %d of %s is stored more than once: %s", n, archive, strings.Join(names, ", "))
			}
			for _, p := range ps {
				volumes = append(volumes, p)
				codecs[p.codec.Name()] = true
			}
		}
	}
	for name := range codecs {
		if c, _ := tarball.CodecByName(name, 0); !c.BarmanRestores() {
			rep.Notes = append(rep.Notes, fmt.Sprintf("volumes compressed with %s (.tar%s): %s", name, c.Ext(), tarball.CannotRestore(name)))
		}
	}
	return volumes, incomplete
}

// seenFile is a regular file read from an archive.
type seenFile struct {
	size   int64
	crc    uint32
	object string
	// order is where extraction puts it: a later member at the same path
	// replaces an earlier one, as tar extraction does.
	order [2]int
	// pagesChecked counts the pages of a relation file whose checksum was
	// compared; pages is what the check found, when a page failed.
	pagesChecked int64
	pages        *pg.PageCheck
}

// heldBody is the content of a small file the check reads
// (backup_manifest, backup_label, global/pg_control), with its order.
type heldBody struct {
	body  []byte
	order [2]int
}

// verifier holds what the volumes' readers found.
type verifier struct {
	opts *RestoreOptions
	// sink writes the members out; nil when only checking.
	sink memberSink
	rep  *RestoreReport
	mu   sync.Mutex
	seen map[string]seenFile
	// failed marks archives with a volume that could not be read to its end.
	failed map[string]bool
	// held are the data archive's backup_manifest, backup_label and
	// global/pg_control, by path, the last of each.
	held map[string]heldBody
	// pages tells whether relation files' page checksums are checked,
	// against pageStart, the backup's start LSN.
	pages     bool
	pageStart uint64
}

// errDamaged stops a restore's other downloads once one volume is found
// damaged: the problem itself is in the report.
var errDamaged = errors.New("damaged volume")

func (v *verifier) downloaded() *atomic.Int64 { return &v.opts.Progress.Downloaded }
func (v *verifier) extracted() *atomic.Int64  { return &v.opts.Progress.Extracted }

// readVolumes reads every volume, -J downloads at a time; the largest
// volumes start first so the slowest does not start last. A restore
// stops at the first damaged volume; a check reads them all.
func (v *verifier) readVolumes(ctx context.Context, volumes []storedVolume) error {
	sort.SliceStable(volumes, func(i, j int) bool { return volumes[i].size > volumes[j].size })
	downloads := uploaders.NewDownloads(v.opts.Jobs)
	// A reader per core decompresses and writes, -J of them but at least
	// two: at -J 1 two volumes still decode in parallel while they share
	// the one download. Each holds its decoder and buffers, so not more.
	workers := max(1, min(len(volumes), runtime.GOMAXPROCS(0), max(2, v.opts.Jobs)))
	// Each worker may run as far ahead of its decoder as the whole
	// budget, so -J downloads run even when one volume is left; the
	// shared budget caps them at -J in flight and its held chunks in
	// memory, with two spare buffers per worker.
	ahead := downloads.Held()
	queue := make(chan storedVolume)
	results := make([]ObjectReport, len(volumes))
	index := map[string]int{}
	for i, p := range volumes {
		index[p.name] = i
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(queue)
		for _, p := range volumes {
			select {
			case queue <- p:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for {
				var p storedVolume
				var ok bool
				select {
				case p, ok = <-queue:
				case <-gctx.Done():
					return gctx.Err()
				}
				if !ok {
					return nil
				}
				r, err := v.readVolume(gctx, p, downloads, ahead, v.sink)
				if err != nil {
					return err
				}
				results[index[p.name]] = r
				if !r.OK && v.sink != nil {
					return errDamaged
				}
				logf(gctx, "Read %s: %d bytes stored, %d members, %d bytes of tar", p.name, r.Size, r.Members, r.TarBytes)
			}
		})
	}
	err := g.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	for _, r := range results {
		if r.Name == "" {
			continue
		}
		v.rep.Objects = append(v.rep.Objects, r)
		v.rep.StoredBytes += r.Size
		v.rep.TarBytes += r.TarBytes
	}
	if errors.Is(err, errDamaged) {
		return nil
	}
	return err
}

// add merges what one volume held.
func (v *verifier) add(files map[string]seenFile, held map[string]heldBody) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for path, f := range files {
		if old, ok := v.seen[path]; ok && later(old.order, f.order) {
			continue
		}
		v.seen[path] = f
	}
	if v.held == nil {
		v.held = map[string]heldBody{}
	}
	for path, b := range held {
		if old, ok := v.held[path]; !ok || later(b.order, old.order) {
			v.held[path] = b
		}
	}
}

func later(a, b [2]int) bool { return a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) }

func (v *verifier) fail(p storedVolume, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.failed[p.archive] = true
	v.rep.problem("archive", p.name, "", format, args...)
}

// archiveOf is the archive a manifest path's file is stored in.
func archiveOf(path string) string {
	if rest, ok := strings.CutPrefix(path, "pg_tblspc/"); ok {
		if oid, _, ok := strings.Cut(rest, "/"); ok {
			return oid
		}
	}
	return "data"
}

// check compares what was read with backup_manifest and backup.info;
// without files (--no-verify) only what no restore can start without:
// the backup's own backup_label, PG_VERSION and global/pg_control.
func (v *verifier) check(info *pg.InfoFile, files bool) {
	rep := v.rep
	v.checkPages()
	label, labelFound := v.held["backup_label"]
	manifest, manifestFound := v.held[pg.ManifestName]
	for path := range v.seen {
		if path != pg.ManifestName {
			rep.Files++
		}
	}
	if labelFound && info.BackupLabel != "" && string(label.body) != info.BackupLabel {
		rep.problem("archive", "data", "backup_label", "differs from backup.info's backup_label: the data archive belongs to another backup (its label: %q)",
			firstLine(string(label.body)))
	}
	if !labelFound && !v.failed["data"] {
		rep.problem("archive", "data", "backup_label", "missing from the data archive, whose last member it is "+
			"(with backup_manifest after it): the archive's last volume may be lost, and a restore cannot start")
	}
	if !files {
		rep.Manifest = "not verified"
		v.checkEssentials()
		return
	}
	if !manifestFound {
		rep.Manifest = "absent"
		note := "no backup_manifest in the data archive (a backup by Barman or by an older barman-cloud-backup): " +
			"every archive was read to its end, but files were not checked against backup_manifest's checksums"
		if v.failed["data"] || !labelFound {
			note = "no backup_manifest found: the end of the data archive is missing or unreadable"
		}
		rep.Notes = append(rep.Notes, note)
		v.checkEssentials()
		return
	}
	m, err := pg.ParseManifest(manifest.body)
	if err != nil {
		rep.Manifest = "damaged"
		rep.problem("manifest", "data", pg.ManifestName, "%v: files were not checked against it", err)
		return
	}
	if v.stale(m, info) {
		// Barman copies PGDATA's backup_manifest, left there by the
		// pg_basebackup (or restore of ours) the server was made from.
		rep.Manifest = "stale"
		rep.Notes = append(rep.Notes, fmt.Sprintf("the backup_manifest in the data archive is an older backup's (its WAL starts at %s, "+
			"this backup's at %s, whose backup_label the archive holds): PGDATA held it and the backup copied it; "+
			"every archive was read to its end, but files were not checked against backup_manifest's checksums",
			pg.FormatLSN(m.WALRanges[len(m.WALRanges)-1].Start), info.BeginXLOG))
		v.checkEssentials()
		return
	}
	rep.Manifest = "checked"
	rep.ManifestFiles = len(m.Files)
	v.checkHeader(m, info)
	v.checkFiles(m)
}

// checkPages reports the relation files whose pages failed their
// checksum, when the backup's own global/pg_control says its cluster had
// data checksums: a backup of ours from before the check, or one of
// Barman's, is judged as one checked while copied would be. Pages
// written during the backup are not judged (pg.PageCheck), nor are
// unlogged relations' (pg.InitFork), and a page torn by a write the copy
// caught halfway cannot be read again here.
func (v *verifier) checkPages() {
	if !v.pages {
		return
	}
	rep := v.rep
	control, ok := v.held["global/pg_control"]
	if !ok {
		rep.Notes = append(rep.Notes, "no global/pg_control read: page checksums were not judged")
		return
	}
	on, err := pg.ControlChecksums(control.body)
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("page checksums were not judged: %v", err))
		return
	}
	if !on {
		rep.PageChecksums = "off"
		rep.Notes = append(rep.Notes, "data page checksums were off in the backup's cluster: pages were not checked")
		return
	}
	rep.PageChecksums = "checked"
	var paths []string
	for path, f := range v.seen {
		if init, ok := pg.InitFork(path); ok {
			if _, unlogged := v.seen[init]; unlogged {
				continue // as the copy, which does not judge them
			}
		}
		rep.PagesChecked += f.pagesChecked
		if f.pages != nil {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	for _, path := range paths {
		f := v.seen[path]
		c := f.pages
		rep.PageFailures += c.Failed
		rep.problem("page", f.object, path, "checksum verification failed in %s", FailureText(c))
	}
}

// checkEssentials is what can be checked without a manifest: the files
// without which no restore starts.
func (v *verifier) checkEssentials() {
	for _, p := range []string{"PG_VERSION", "global/pg_control"} {
		if _, ok := v.seen[p]; !ok && !v.failed["data"] {
			v.rep.problem("file", "data", p, "missing from the data archive")
		}
	}
}

// stale tells whether m is a manifest the backup copied rather than its
// own: it starts elsewhere than backup.info's begin_xlog while the data
// archive's backup_label is backup.info's. A data archive of another
// backup has another label too, and is reported as such.
func (v *verifier) stale(m *pg.BackupManifest, info *pg.InfoFile) bool {
	begin, err := pg.ParseLSN(info.BeginXLOG)
	label, labelFound := v.held["backup_label"]
	return err == nil && len(m.WALRanges) > 0 && m.WALRanges[len(m.WALRanges)-1].Start != begin &&
		labelFound && info.BackupLabel != "" && string(label.body) == info.BackupLabel
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// checkHeader compares the manifest's WAL range and system identifier
// with backup.info's.
func (v *verifier) checkHeader(m *pg.BackupManifest, info *pg.InfoFile) {
	rep := v.rep
	if m.HasSystemID && info.SystemID != "" && strconv.FormatUint(m.SystemID, 10) != info.SystemID {
		rep.problem("manifest", "data", pg.ManifestName, "System-Identifier %d, backup.info's systemid %s: the manifest is another cluster's",
			m.SystemID, info.SystemID)
	}
	begin, err1 := pg.ParseLSN(info.BeginXLOG)
	end, err2 := pg.ParseLSN(info.EndXLOG)
	if err1 != nil || err2 != nil || len(m.WALRanges) == 0 {
		rep.problem("manifest", "data", pg.ManifestName, "the WAL range cannot be compared: backup.info's begin_xlog %q and end_xlog %q, %d ranges in the manifest",
			info.BeginXLOG, info.EndXLOG, len(m.WALRanges))
		return
	}
	// The first range ends the backup; the last starts it, on the
	// backup's timeline (backup_manifest.c, AddWALInfoToBackupManifest).
	// Ours end at end_xlog; Barman's backup.info of a pg_basebackup backup
	// ends at the next segment boundary, after the manifest's end.
	first, last := m.WALRanges[0], m.WALRanges[len(m.WALRanges)-1]
	if last.Start != begin || first.End > end || first.End < last.Start || int64(last.Timeline) != info.Timeline {
		rep.problem("manifest", "data", pg.ManifestName, "WAL range %s-%s on timeline %d, backup.info's %s-%s on timeline %d: the manifest is another backup's",
			pg.FormatLSN(last.Start), pg.FormatLSN(first.End), last.Timeline, info.BeginXLOG, info.EndXLOG, info.Timeline)
	}
}

// checkFiles compares every file of the manifest with what the archives
// hold.
func (v *verifier) checkFiles(m *pg.BackupManifest) {
	rep := v.rep
	listed := make(map[string]bool, len(m.Files))
	unchecked := map[string]int{}
	differ := map[string]int{}
	total := map[string]int{}
	otherAlgorithms := map[string]int{}
	for _, f := range m.Files {
		listed[f.Path] = true
		s, ok := v.seen[f.Path]
		archive := archiveOf(f.Path)
		if !ok {
			if v.failed[archive] {
				unchecked[archive]++
			} else {
				rep.problem("file", "", f.Path, "missing: in backup_manifest (%d bytes) but in no volume of archive %s", f.Size, archive)
			}
			continue
		}
		total[s.object]++
		rep.FilesChecked++
		switch {
		case s.size != f.Size:
			differ[s.object]++
			rep.problem("file", s.object, f.Path, "size %d, backup_manifest says %d", s.size, f.Size)
		case f.Algorithm == "CRC32C" && pg.CRCHex(s.crc) != f.Checksum:
			differ[s.object]++
			rep.problem("file", s.object, f.Path, "checksum mismatch: CRC32C %s, backup_manifest says %s", pg.CRCHex(s.crc), f.Checksum)
		case f.Algorithm != "CRC32C" && f.Algorithm != "":
			otherAlgorithms[f.Algorithm]++
		}
	}
	var extra []string
	for path := range v.seen {
		if !listed[path] && path != pg.ManifestName && !strings.HasPrefix(path, "pg_wal/") {
			extra = append(extra, path)
		}
	}
	sort.Strings(extra)
	for _, path := range extra {
		rep.problem("file", v.seen[path].object, path, "extra: stored but not in backup_manifest")
	}
	for _, archive := range sortedKeys(unchecked) {
		rep.problem("archive", archive, "", "%d files of backup_manifest were not checked: a volume of the archive is missing or could not be read", unchecked[archive])
	}
	for _, object := range sortedKeys(differ) {
		rep.problem("object", object, "", "%d of its %d files differ from backup_manifest: damaged, or an object of another backup", differ[object], total[object])
	}
	for _, a := range sortedKeys(otherAlgorithms) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d files have %s checksums, which are not checked here: their sizes are", otherAlgorithms[a], a))
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// logf logs at info level.
func logf(ctx context.Context, format string, args ...any) {
	zerolog.Ctx(ctx).Info().Msgf(format, args...)
}

// zerologWarn logs at warning level.
func zerologWarn(ctx context.Context, msg string) {
	zerolog.Ctx(ctx).Warn().Msg(msg)
}
