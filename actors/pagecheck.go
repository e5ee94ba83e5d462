package actors

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// PagePolicy is what the copy does about data page checksums
// (--page-checksums): pg_basebackup checks them and fails on a
// mismatch, pgBackRest checks them and records the failures; Barman
// checks nothing.
type PagePolicy int

const (
	// WarnPages checks every page of every relation file of a cluster
	// with data checksums and logs a warning for each failing file; the
	// backup completes, a faithful copy of what is on disk.
	WarnPages PagePolicy = iota
	// FailPages checks as WarnPages does, then fails the run, once every
	// file is read, if a page failed.
	FailPages
	// SkipPages checks nothing.
	SkipPages
)

// PageState says whether a run's copy checks page checksums.
type PageState int32

const (
	// PagesUnknown: the copy has not started.
	PagesUnknown PageState = iota
	// PagesChecked: the cluster has data checksums, and the copy checks
	// them.
	PagesChecked
	// PagesNoChecksums: the cluster has none (initdb without
	// --data-checksums before PostgreSQL 18): nothing to check.
	PagesNoChecksums
	// PagesSkipped: --page-checksums off.
	PagesSkipped
	// PagesUndetermined: whether the cluster has checksums could not be
	// told (in hook mode, a pg_control that cannot be read), so nothing
	// is checked; under FailPages the run fails.
	PagesUndetermined
)

// PageTally is what the copy's page checksum check found so far.
type PageTally struct {
	state atomic.Int32
	// Checked counts the pages whose checksum was compared (new pages
	// and those written since the backup started are not);
	// FailedPages those that differed, in FailedFiles files.
	Checked, FailedPages, FailedFiles atomic.Int64
}

// State is whether the copy checks page checksums.
func (t *PageTally) State() PageState { return PageState(t.state.Load()) }

// PageChecksumError is a copy under FailPages that found pages whose
// checksum differs. Barman exits 1 for a failed backup.
type PageChecksumError struct {
	Pages, Files int64
	// File and Block are the first failure's: the file's path as read,
	// the block in the file.
	File  string
	Block uint32
}

func (e *PageChecksumError) Error() string {
	return fmt.Sprintf("checksum verification failure during base backup: %s in %s, the first in file %q, block %d, with --page-checksums fail",
		counted(e.Pages, "page"), counted(e.Files, "file"), e.File, e.Block)
}

// counted is n and the noun, plural but for one.
func counted[N int | int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// pageChecks is the sealer's page checksum check, one file at a time.
type pageChecks struct {
	policy PagePolicy
	tally  *PageTally
	// start is the backup's start LSN: pages at or past it are not
	// judged.
	start uint64
	on    bool
	first *PageChecksumError
	// initDir and inits are the init forks of the last directory a
	// relation file was read from: the unlogged relations there.
	initDir string
	inits   map[string]bool
}

// begin decides, once the backup has started, whether pages are
// checked: they are when the cluster has checksums and the policy does
// not skip them. Under FailPages, not knowing whether the cluster has
// them fails the run: the check asked for cannot be made.
func (pc *pageChecks) begin(ctx context.Context, layout *pg.Layout, info *pg.BackupInfo) error {
	if pc.tally == nil {
		pc.tally = &PageTally{}
	}
	log := zerolog.Ctx(ctx)
	state := PagesChecked
	start, err := pg.ParseLSN(info.BeginXLOG)
	if err != nil {
		err = fmt.Errorf("the backup's start LSN %q: %w", info.BeginXLOG, err)
	}
	if layout.ChecksumsUnknown != nil {
		err = layout.ChecksumsUnknown
	}
	switch {
	case pc.policy == SkipPages:
		state = PagesSkipped
	case err != nil:
		state = PagesUndetermined
		if pc.policy == FailPages {
			pc.tally.state.Store(int32(state))
			return fmt.Errorf("--page-checksums fail: cannot tell whether the cluster has data checksums: %w", err)
		}
		log.Warn().Msgf("page checksums are not checked: cannot tell whether the cluster has them: %v", err)
	case !layout.DataChecksums:
		state = PagesNoChecksums
		log.Info().Msg("Data page checksums are off in this cluster: pages are not checked")
	default:
		pc.start, pc.on = start, true
	}
	pc.tally.state.Store(int32(state))
	return nil
}

// check returns the check for the pages of the regular file e, or nil
// when e is not a relation file whose pages are checked: pages are not
// checked, or the relation is unlogged (pg.InitFork).
func (pc *pageChecks) check(e tarball.Entry) *pg.PageCheck {
	if !pc.on || e.Path == "" {
		return nil
	}
	rel := pg.ManifestPath(e.Archive, e.Header.Name)
	segment, ok := pg.RelationSegment(rel)
	if !ok {
		return nil
	}
	if init, ok := pg.InitFork(rel); ok && pc.unlogged(filepath.Dir(e.Path), path.Base(init)) {
		return nil
	}
	return &pg.PageCheck{Start: pc.start, Segment: segment}
}

// unlogged tells whether the directory dir holds the init fork named
// init. The walker reads a directory's files one after the other, so
// its init forks are listed once, when the first of them comes; a
// directory that cannot be listed has none, and its files are judged.
func (pc *pageChecks) unlogged(dir, init string) bool {
	if dir != pc.initDir {
		pc.initDir, pc.inits = dir, initForks(dir)
	}
	return pc.inits[init]
}

// initForks lists the init forks in dir, a batch of names at a time.
func initForks(dir string) map[string]bool {
	inits := map[string]bool{}
	f, err := os.Open(dir)
	if err != nil {
		return inits
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if strings.HasSuffix(n, "_init") {
				inits[n] = true
			}
		}
		if err != nil {
			return inits
		}
	}
}

// through is what tarball.WriteSum reads the file of c through: c's
// rereading reader, or the file itself when c is nil.
func through(c *pg.PageCheck) func(*os.File) io.Reader {
	if c == nil {
		return nil
	}
	return func(f *os.File) io.Reader { return c.Reader(f) }
}

// done counts what checking file found and warns of its failures in
// one line, in pg_basebackup's words.
func (pc *pageChecks) done(ctx context.Context, file string, c *pg.PageCheck) {
	if c == nil {
		return
	}
	pc.tally.Checked.Add(c.Checked)
	if block, ok := c.OutOfStep(); ok {
		zerolog.Ctx(ctx).Warn().Msgf("could not verify checksums in file %q from block %d on: its size is not a whole number of %d-byte pages",
			file, block, pg.BlockSize)
	}
	if c.Failed == 0 {
		return
	}
	pc.tally.FailedPages.Add(c.Failed)
	pc.tally.FailedFiles.Add(1)
	if pc.first == nil {
		pc.first = &PageChecksumError{File: file, Block: c.Blocks[0]}
	}
	zerolog.Ctx(ctx).Warn().Msgf("checksum verification failed in file %q, %s", file, FailureText(c))
}

// verdict is the check's end, once every file is read: a warning with
// the totals, and under FailPages the run's failure.
func (pc *pageChecks) verdict(ctx context.Context) error {
	if pc.first == nil {
		return nil
	}
	pages, files := pc.tally.FailedPages.Load(), pc.tally.FailedFiles.Load()
	if pc.policy == FailPages {
		pc.first.Pages, pc.first.Files = pages, files
		return pc.first
	}
	zerolog.Ctx(ctx).Warn().Msgf("%s in %s: the backup holds the pages as they are on disk (--page-checksums fail would fail it)",
		counted(pages, "total checksum verification failure"), counted(files, "file"))
	return nil
}

// FailureText is what checking a file's pages found, in pg_basebackup's
// words, for a file with a failure: the first block and its checksums,
// then, for more than one, the total and the first pg.MaxListedBlocks
// blocks ("0, 7, 9, 11, 12, ...").
func FailureText(c *pg.PageCheck) string {
	text := fmt.Sprintf("block %d: calculated %X but expected %X", c.Blocks[0], c.Calculated, c.Expected)
	if c.Failed == 1 {
		return text
	}
	words := make([]string, 0, len(c.Blocks)+1)
	for _, b := range c.Blocks {
		words = append(words, fmt.Sprint(b))
	}
	if c.Failed > int64(len(c.Blocks)) {
		words = append(words, "...")
	}
	return fmt.Sprintf("%s; the file has a total of %d checksum verification failures, in blocks %s", text, c.Failed, strings.Join(words, ", "))
}
