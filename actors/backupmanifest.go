package actors

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// backupManifest is the sealer's record of what it stored, for the
// backup_manifest it adds as the last member of the data archive, where
// pg_basebackup puts it: every regular file with its size and the CRC-32C
// of its bytes as stored (a file padded or cut by the shrink/grow rule is
// summed as the archive holds it), computed while the file streams into
// its archive, so nothing is read twice.
type backupManifest struct {
	files *pg.ManifestBuilder
	crc   hash.Hash32
	// keepSource: the backup is one Barman took (hook mode), whose data/
	// may already hold the backup_manifest pg_basebackup wrote for it.
	keepSource bool
	// fromSource is set once that manifest was stored: it describes the
	// backup, so none of ours is added.
	fromSource bool
	// owner is PGDATA's root entry, whose owner the manifest gets.
	owner *tar.Header
}

func newBackupManifest(keepSource bool) *backupManifest {
	return &backupManifest{files: pg.NewManifestBuilder(), crc: pg.NewCRC(), keepSource: keepSource}
}

// isRootManifest tells whether e is a backup_manifest at PGDATA's root.
func isRootManifest(e tarball.Entry) bool {
	return e.Archive == "data" && (e.Header.Name == "./"+pg.ManifestName || e.Header.Name == pg.ManifestName)
}

// admit decides whether the sealer stores e. A live server's PGDATA may
// hold the backup_manifest of the base backup it was made from, which is
// not this backup's: it is left out, as pg_basebackup leaves it out
// (basebackup.c, excludeFiles). In hook mode the one pg_basebackup wrote
// for Barman's backup is kept, and then it is the backup's manifest; one
// an rsync backup copied from such a server's PGDATA is not, and is left
// out. info holds the backup's start by then: the controller records it
// before the walk begins.
func (m *backupManifest) admit(e tarball.Entry, info *pg.BackupInfo) bool {
	if e.Archive == "data" && e.Header.Name == "./" && m.owner == nil {
		m.owner = e.Header
	}
	if !isRootManifest(e) || e.Header.Typeflag != tar.TypeReg {
		return true
	}
	if m.keepSource && describes(e.Path, info) {
		m.fromSource = true
		return true
	}
	return false
}

// describes tells whether the manifest in the file at path is the
// backup's: its WAL range starts where backup.info's does. An unknown
// start keeps it: no manifest of ours could be written then anyway. The
// file is read here as well as into the archive; it is the manifest, not
// data, and small beside it.
func describes(path string, info *pg.BackupInfo) bool {
	begin, err := pg.ParseLSN(info.BeginXLOG)
	if err != nil {
		return true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	man, err := pg.ParseManifest(b)
	return err == nil && len(man.WALRanges) > 0 && man.WALRanges[len(man.WALRanges)-1].Start == begin
}

// sum is where the sealer feeds a regular file's content as it stores it.
func (m *backupManifest) sum() hash.Hash32 {
	m.crc.Reset()
	return m.crc
}

// stored records a regular file the sealer stored, summed by sum.
func (m *backupManifest) stored(e tarball.Entry) {
	if isRootManifest(e) {
		return
	}
	m.files.Add(pg.ManifestPath(e.Archive, e.Header.Name), e.Header.Size, e.Header.ModTime, m.crc.Sum32())
}

// entry is the manifest as the data archive's last member, or false when
// the backup needs none of ours: its header, and render, which writes its
// content. The content is streamed into the archive, never held whole.
// info must hold the backup's end: the sealer asks only once the
// controller has handed over backup_label (or closed labels), which it
// does after the stop.
func (m *backupManifest) entry(ctx context.Context, info *pg.BackupInfo) (*tar.Header, func(io.Writer) error, bool) {
	log := zerolog.Ctx(ctx)
	if m.fromSource {
		log.Info().Msg("Keeping the backup_manifest Barman's backup holds")
		return nil, nil, false
	}
	ranges, version, sysid, err := manifestHeader(info)
	if err != nil {
		// Without its WAL range a manifest would mislead pg_verifybackup.
		log.Warn().Msgf("No backup_manifest is written: %v", err)
		return nil, nil, false
	}
	size := m.files.Size(version, sysid, ranges)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: pg.ManifestName, Size: size, Mode: 0o600,
		ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX}
	if m.owner != nil {
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = m.owner.Uid, m.owner.Gid, m.owner.Uname, m.owner.Gname
	}
	log.Info().Msgf("Uploading 'backup_manifest' (%d files, %d bytes) to 'data'", m.files.Len(), size)
	render := func(w io.Writer) error {
		n, err := m.files.WriteTo(w, version, sysid, ranges)
		if err == nil && n != size {
			err = fmt.Errorf("backup_manifest: %d bytes written, %d announced", n, size)
		}
		return err
	}
	return hdr, render, true
}

// manifestHeader reads what the manifest says besides the files from
// backup.info's fields: the WAL ranges (see walRanges), and for
// PostgreSQL 17 and later version 2 with the system identifier.
func manifestHeader(info *pg.BackupInfo) ([]pg.WALRange, int, uint64, error) {
	ranges, err := walRanges(info)
	if err != nil {
		return nil, 0, 0, err
	}
	version := 1
	var sysid uint64
	if info.Version != nil {
		version = pg.ManifestVersion(*info.Version)
	}
	if version >= 2 {
		if sysid, err = strconv.ParseUint(info.SystemID, 10, 64); err != nil {
			return nil, 0, 0, fmt.Errorf("system identifier %q: %w", info.SystemID, err)
		}
	}
	return ranges, version, sysid, nil
}

// walRanges is the WAL a restore of the backup replays, from the start
// on the backup's timeline to the stop on the timeline of end_wal. A
// standby that follows its upstream onto a new timeline during the copy
// stops on that timeline; the server then writes one range per timeline
// crossed, from the end timeline's history (backup_manifest.c,
// AddWALInfoToBackupManifest), and pg_verifybackup rejects a single
// range. That history is read from the history file in PGDATA's pg_wal
// rather than over the connection: the run reads PGDATA anyway, while
// pg_read_binary_file needs a privilege a backup role often lacks, and
// TIMELINE_HISTORY a replication connection. (A primary cannot change
// timelines during a backup, nor can a standby promoted meanwhile finish
// one: pg_backup_stop fails.) With no end_wal, as a backup Barman took
// gives none, the backup is taken to end on its start timeline.
func walRanges(info *pg.BackupInfo) ([]pg.WALRange, error) {
	if info.Timeline == nil || info.BeginXLOG == "" || info.EndXLOG == "" {
		return nil, errors.New("the backup's WAL range is unknown")
	}
	start, err := pg.ParseLSN(info.BeginXLOG)
	if err != nil {
		return nil, err
	}
	end, err := pg.ParseLSN(info.EndXLOG)
	if err != nil {
		return nil, err
	}
	startTLI := uint32(*info.Timeline)
	endTLI := startTLI
	if info.EndWAL != "" {
		if endTLI, err = pg.WALFileTimeLine(info.EndWAL); err != nil {
			return nil, fmt.Errorf("the backup's end timeline: %w", err)
		}
	}
	if endTLI == startTLI {
		return []pg.WALRange{{Timeline: startTLI, Start: start, End: end}}, nil
	}
	if info.PGData == "" {
		return nil, fmt.Errorf("the backup ended on timeline %d, not its start timeline %d, and PGDATA, which holds its history, is unknown", endTLI, startTLI)
	}
	history, err := pg.ReadTimeLineHistory(info.PGData, endTLI)
	if err != nil {
		return nil, err
	}
	ranges, err := pg.BackupWALRanges(history, startTLI, start, endTLI, end)
	if err != nil {
		return nil, fmt.Errorf("the backup's WAL ranges: %w", err)
	}
	return ranges, nil
}
