package actors

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// walker lists what to copy, in Barman's order: each tablespace, PGDATA,
// global/pg_control, then configuration files outside PGDATA. It closes
// walked once the list is complete, before out, so the sealer can tell a
// finished walk from one cut short by a failure; backup_label is not its
// business, since the controller gets it from the stop.
func walker(ctx context.Context, pl *plan, walked chan<- struct{}, out chan<- tarball.Entry) error {
	defer close(out)
	if err := pl.wait(ctx); err != nil {
		return err
	}
	w := &walk{ctx: ctx, out: out}
	if err := w.layout(pl.layout); err != nil {
		return err
	}
	close(walked)
	return nil
}

// labelEntry is backup_label as a member of the data archive, owned as
// PGDATA is (Barman 3.4 gets uid 0 there by a quirk; restore ignores it).
func labelEntry(pgdata string, label []byte) tarball.Entry {
	uid, gid := ownerOf(pgdata)
	return tarball.Entry{Archive: "data", Body: label, Header: &tar.Header{
		Typeflag: tar.TypeReg, Name: "backup_label", Size: int64(len(label)), Mode: 0o600,
		Uid: uid, Gid: gid, ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX,
	}}
}

type walk struct {
	ctx context.Context
	out chan<- tarball.Entry
}

func (w *walk) emit(e tarball.Entry) error {
	select {
	case w.out <- e:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

func (w *walk) layout(l *pg.Layout) error {
	log := zerolog.Ctx(w.ctx)
	pgdata := l.PGData
	var pgdataExcludes []string
	for _, t := range l.Tablespaces {
		oid := strconv.FormatUint(uint64(t.OID), 10)
		if rel, ok := strings.CutPrefix(t.Location, pgdata+"/"); ok {
			// A tablespace inside PGDATA is copied once, in its own archive.
			pgdataExcludes = append(pgdataExcludes, "/"+rel, "/"+rel+"/**")
		}
		pgdataExcludes = append(pgdataExcludes, "/pg_tblspc/"+oid)
		rules := tarball.NewRules([]string{"/PG_" + l.MajorVersion + "_*"},
			append([]string{"/*"}, tarball.GlobalExcludes...))
		log.Info().Msgf("Uploading '%s' directory '%s' as '%s'", t.Name, t.Location, oid)
		if err := w.dir(t.Location, oid, rules); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat(pgdata); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if pgdata, err = filepath.EvalSymlinks(pgdata); err != nil {
			return fmt.Errorf("resolve PGDATA %s: %w", l.PGData, err)
		}
	}
	excludes := append(append(append([]string{}, tarball.PGDataExcludes...), tarball.GlobalExcludes...), pgdataExcludes...)
	if l.Live {
		excludes = append(excludes, tarball.LiveExcludes...)
	}
	log.Info().Msgf("Uploading 'pgdata' directory '%s' as 'data'", pgdata)
	if err := w.dir(pgdata, "data", tarball.NewRules(nil, excludes)); err != nil {
		return err
	}
	if err := w.file(filepath.Join(pgdata, "global", "pg_control"), "global/pg_control", false); err != nil {
		return err
	}
	for _, cf := range l.ConfigFiles {
		log.Info().Msgf("Uploading '%s' file from '%s' to 'data' with path '%s'", cf.Kind, cf.Path, filepath.Base(cf.Path))
		if err := w.file(cf.Path, filepath.Base(cf.Path), cf.Optional); err != nil {
			return err
		}
	}
	return nil
}

// file adds one file to the data archive; unlike the walk, a missing
// file is an error unless optional.
func (w *walk) file(path, name string, optional bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	hdr, err := tarball.Header(path, name, fi)
	if err != nil {
		return err
	}
	return w.emit(tarball.Entry{Archive: "data", Header: hdr, Path: path})
}

// dir walks root like Python's os.walk, top down with sorted names: a
// directory not allowed by the rules is left out with its files, but its
// subdirectories are still visited; symbolic links to directories are
// neither followed nor stored, but for those whose contents the rules
// leave out (see linkedDir); files and directories that vanish on the
// way are skipped, since WAL replay recreates them.
func (w *walk) dir(root, archive string, rules *tarball.Rules) error {
	var visit func(rel string) error
	visit = func(rel string) error {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(root, filepath.FromSlash(rel))
		items, err := readDir(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read directory %s: %w", path, err)
		}
		name := tarball.DirMember(rel)
		if rules.Allowed(name, true) {
			if err := w.add(path, name, archive); err != nil {
				return err
			}
			for i := range items.len() {
				it, mode := items.entry(i)
				if isDir(path, it, mode) {
					if mode&fs.ModeSymlink != 0 {
						if err := w.linkedDir(rules, rel, it, filepath.Join(path, it), archive); err != nil {
							return err
						}
					}
					continue
				}
				member := tarball.FileMember(rel, it)
				if !rules.Allowed(member, false) {
					continue
				}
				if err := w.add(filepath.Join(path, it), member, archive); err != nil {
					return err
				}
			}
		}
		for i := range items.len() {
			if it, mode := items.entry(i); mode.IsDir() {
				if err := visit(strings.TrimPrefix(rel+"/"+it, "/")); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit("")
}

// listing is a directory's entries sorted by name, as os.ReadDir gives
// them, held compactly: the names end to end in one buffer and a record
// of a few bytes per entry, with no pointers. A directory of 200,000
// relation files takes about 3 MB so, against 20 MB as a []fs.DirEntry
// that the garbage collector would also have to scan again and again.
type listing struct {
	names   []byte
	entries []listed
}

type listed struct {
	at   uint32
	n    uint32
	mode fs.FileMode // the type bits only
}

// readDir lists the directory at path, reading it in batches so that no
// more than one batch of fs.DirEntry is held at a time.
func readDir(path string) (*listing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l := &listing{}
	for {
		batch, err := f.ReadDir(1024)
		for _, e := range batch {
			l.entries = append(l.entries, listed{at: uint32(len(l.names)), n: uint32(len(e.Name())), mode: e.Type()})
			l.names = append(l.names, e.Name()...)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(l.entries, func(a, b listed) int { return bytes.Compare(l.name(a), l.name(b)) })
	return l, nil
}

func (l *listing) name(e listed) []byte { return l.names[e.at : e.at+e.n] }

func (l *listing) len() int { return len(l.entries) }

// entry is the i-th entry's name and type bits.
func (l *listing) entry(i int) (string, fs.FileMode) {
	e := l.entries[i]
	return string(l.name(e)), e.mode
}

// linkedDir handles the symbolic link to a directory item in the
// directory at rel. One whose contents are left out is stored as an empty
// directory with the mode and times of the directory it points to, as
// PostgreSQL's base backup stores it (basebackup.c, sendDir and
// convert_link_to_directory): pg_wal ("initdb -X", see walDir), and
// pg_stat_tmp on a tmpfs or pg_notify, pg_replslot... on another disk,
// without which a restored cluster may not start. Barman stores nothing
// for them. Any other link to a directory is left out, as Barman leaves
// it out.
func (w *walk) linkedDir(rules *tarball.Rules, rel, item, path, archive string) error {
	if rel == "" && archive == "data" && (item == "pg_wal" || item == "pg_xlog") {
		return w.walDir(path, item, archive)
	}
	name := tarball.DirMember(strings.TrimPrefix(rel+"/"+item, "/"))
	if !rules.KeepsEmpty(name) {
		return nil
	}
	return w.emptyDir(path, name, archive)
}

// walDir stores a symlinked WAL directory as an empty directory with an
// empty archive_status, so a restored PGDATA can start. Barman stores
// nothing for it, and its restore then lacks pg_wal altogether.
func (w *walk) walDir(path, name, archive string) error {
	return w.emptyDir(path, name, archive, "/archive_status")
}

// emptyDir stores the directory at path, and each of its subdirectories
// subs that exists, as empty directories named name and name+sub, with
// the mode, owner and times of what path resolves to. One that has
// vanished is skipped, as the walk skips it.
func (w *walk) emptyDir(path, name, archive string, subs ...string) error {
	for _, sub := range append([]string{""}, subs...) {
		fi, err := os.Stat(path + sub)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path+sub, err)
		}
		hdr, err := tarball.Header(path+sub, name+sub, fi)
		if err != nil {
			return err
		}
		if err := w.emit(tarball.Entry{Archive: archive, Header: hdr}); err != nil {
			return err
		}
	}
	return nil
}

// isDir tells whether the entry name in dir, of type mode, is a
// directory, following symbolic links as os.walk does when it sorts
// entries into directories and files.
func isDir(dir, name string, mode fs.FileMode) bool {
	if mode.IsDir() {
		return true
	}
	if mode&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	return err == nil && fi.IsDir()
}

func (w *walk) add(path, name, archive string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	hdr, err := tarball.Header(path, name, fi)
	if errors.Is(err, tarball.ErrUnsupportedType) {
		return nil
	}
	if err != nil {
		return err
	}
	e := tarball.Entry{Archive: archive, Header: hdr}
	if hdr.Typeflag == tar.TypeReg {
		e.Path = path
	}
	return w.emit(e)
}

func ownerOf(path string) (int, int) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}
