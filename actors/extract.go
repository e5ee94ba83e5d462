package actors

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// controlFile is written last: PostgreSQL refuses to start a data
// directory without it, so a restore that did not finish cannot be
// started and silently crash-recover a partial copy.
const controlFile = "global/pg_control"

// unsafeMemberError is a member whose name would put it outside its
// archive's directory: damage, or a hostile archive.
type unsafeMemberError struct{ name string }

func (e *unsafeMemberError) Error() string {
	return fmt.Sprintf("member %q would be written outside the archive's directory", e.name)
}

// memberPath is a member's name as a clean relative path; "" for the
// archive's root ("." or "./").
func memberPath(name string) (string, error) {
	clean := path.Clean("/" + strings.TrimPrefix(name, "./"))[1:]
	if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
		return "", &unsafeMemberError{name}
	}
	return clean, nil
}

// attributes are what a member keeps on disk: Barman's restore (Python's
// tarfile) keeps mode and mtime; the owner is the running user.
type attributes struct {
	mode  fs.FileMode
	mtime time.Time
	order [2]int
}

func attributesOf(h *tar.Header, order [2]int) attributes {
	return attributes{mode: fs.FileMode(h.Mode).Perm() | fs.FileMode(h.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), mtime: h.ModTime, order: order}
}

// link is a symbolic or hard link, made once every file is written so no
// file is ever written through a link an archive made.
type link struct {
	hard   bool
	target string
	order  [2]int
}

// extraction writes the members of a backup's archives to their
// directories as they stream, from several volumes at once. Of two
// members at one path the later one in archive order wins, whichever
// volume is read first, as extracting the volumes one after another
// would leave it.
type extraction struct {
	// roots is each archive's directory: "data" RECOVERY_DIR, a
	// tablespace's OID its location.
	roots    map[string]string
	progress *RestoreProgress

	mu sync.Mutex
	// written is the order of the member each file holds; writing the
	// files being written now, closed when done.
	written map[string][2]int
	writing map[string]chan struct{}
	made    map[string]bool
	dirs    map[string]attributes
	links   map[string]link
	// control is global/pg_control, held until every other file is
	// written, checked and synced.
	control      []byte
	controlAttrs attributes
	hasControl   bool
}

func newExtraction(roots map[string]string, progress *RestoreProgress) *extraction {
	return &extraction{roots: roots, progress: progress, written: map[string][2]int{}, writing: map[string]chan struct{}{},
		made: map[string]bool{}, dirs: map[string]attributes{}, links: map[string]link{}}
}

// member places one member: directories and files now, links at the end.
func (e *extraction) member(ctx context.Context, p storedVolume, h *tar.Header, order [2]int) (io.WriteCloser, error) {
	name, err := memberPath(h.Name)
	if err != nil {
		return nil, err
	}
	root := e.roots[p.archive]
	dest := filepath.Join(root, filepath.FromSlash(name))
	switch h.Typeflag {
	case tar.TypeDir:
		if err := e.mkdirAll(dest); err != nil {
			return nil, err
		}
		e.mu.Lock()
		if old, ok := e.dirs[dest]; !ok || later(order, old.order) {
			e.dirs[dest] = attributesOf(h, order)
		}
		e.mu.Unlock()
		return nil, nil
	case tar.TypeReg:
		if p.archive == "data" && name == controlFile {
			if h.Size > 1<<20 {
				return nil, &unsafeMemberError{h.Name + " larger than 1 MiB"}
			}
			return &heldControl{e: e, attrs: attributesOf(h, order)}, nil
		}
		return e.create(ctx, dest, attributesOf(h, order))
	case tar.TypeSymlink, tar.TypeLink:
		l := link{hard: h.Typeflag == tar.TypeLink, target: h.Linkname, order: order}
		if l.hard {
			target, err := memberPath(h.Linkname)
			if err != nil {
				return nil, err
			}
			l.target = filepath.Join(root, filepath.FromSlash(target))
		}
		e.mu.Lock()
		if old, ok := e.links[dest]; !ok || later(order, old.order) {
			e.links[dest] = l
		}
		e.mu.Unlock()
		return nil, nil
	}
	logf(ctx, "Skipping %s in %s: a tar member of type %q, which PostgreSQL does not keep in a data directory", h.Name, p.name, h.Typeflag)
	return nil, nil
}

// mkdirAll makes a directory and its parents, private until the end sets
// the archive's modes; each once.
func (e *extraction) mkdirAll(dir string) error {
	e.mu.Lock()
	made := e.made[dir]
	e.mu.Unlock()
	if made {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	e.mu.Lock()
	e.made[dir] = true
	e.mu.Unlock()
	return nil
}

// create opens dest for the member of the given order, or returns a
// writer to nowhere if a later member has written it already.
func (e *extraction) create(ctx context.Context, dest string, attrs attributes) (io.WriteCloser, error) {
	for {
		e.mu.Lock()
		old, had := e.written[dest]
		if had && later(old, attrs.order) {
			e.mu.Unlock()
			return nopWriteCloser{io.Discard}, nil
		}
		busy, isBusy := e.writing[dest]
		if !isBusy {
			done := make(chan struct{})
			e.writing[dest], e.written[dest] = done, attrs.order
			e.mu.Unlock()
			f, err := e.open(dest, had)
			if err != nil {
				e.release(dest, done)
				return nil, err
			}
			return &restoredFile{e: e, f: f, dest: dest, attrs: attrs, done: done}, nil
		}
		e.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (e *extraction) open(dest string, again bool) (*os.File, error) {
	if err := e.mkdirAll(filepath.Dir(dest)); err != nil {
		return nil, err
	}
	if again {
		// An earlier member left its mode, perhaps read-only.
		os.Chmod(dest, 0o600)
	}
	return os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}

func (e *extraction) release(dest string, done chan struct{}) {
	e.mu.Lock()
	delete(e.writing, dest)
	e.mu.Unlock()
	close(done)
}

// restoredFile is one file being written; Close gives it the member's
// mode and mtime.
type restoredFile struct {
	e     *extraction
	f     *os.File
	dest  string
	attrs attributes
	done  chan struct{}
	// written and flushed are byte offsets: what was written, and up to
	// where the disk was asked to write it (startWriteback).
	written, flushed int64
}

// writebackEvery is how many bytes written start their writeback, in
// bytes: PostgreSQL's backend_flush_after range (pg_flush_data), large
// enough that the calls cost nothing against the copy.
const writebackEvery = 8 << 20

func (r *restoredFile) Write(b []byte) (int, error) {
	n, err := r.f.Write(b)
	r.written += int64(n)
	if r.written-r.flushed >= writebackEvery {
		startWriteback(r.f, r.flushed, r.written-r.flushed)
		r.flushed = r.written
	}
	return n, err
}

func (r *restoredFile) Close() error {
	defer r.e.release(r.dest, r.done)
	if r.written > r.flushed {
		startWriteback(r.f, r.flushed, r.written-r.flushed)
	}
	err := r.f.Close()
	if err == nil {
		err = os.Chmod(r.dest, r.attrs.mode)
	}
	if err == nil {
		err = os.Chtimes(r.dest, r.attrs.mtime, r.attrs.mtime)
	}
	if err == nil {
		r.e.progress.Files.Add(1)
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// heldControl keeps pg_control in memory (8 KiB) for the end.
type heldControl struct {
	e     *extraction
	attrs attributes
	buf   []byte
}

func (c *heldControl) Write(b []byte) (int, error) {
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *heldControl) Close() error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if !c.e.hasControl || later(c.attrs.order, c.e.controlAttrs.order) {
		c.e.control, c.e.controlAttrs, c.e.hasControl = c.buf, c.attrs, true
	}
	return nil
}

// links makes the archives' hard links, then their symbolic links, then
// the pg_tblspc links to the tablespaces' places, and an empty pg_wal (or
// pg_xlog) if no archive brought it, as Barman's restore does.
func (e *extraction) makeLinks(data string, tablespaces map[string]string, walDir string) error {
	names := make([]string, 0, len(e.links))
	for dest := range e.links {
		names = append(names, dest)
	}
	sort.Strings(names)
	for _, hard := range []bool{true, false} {
		for _, dest := range names {
			l := e.links[dest]
			if l.hard != hard {
				continue
			}
			// Of a directory and a link at one path, the later member
			// wins, as extracting the volumes in turn would leave it.
			if d, ok := e.dirs[dest]; ok {
				if later(d.order, l.order) {
					continue
				}
				delete(e.dirs, dest)
			}
			if err := e.mkdirAll(filepath.Dir(dest)); err != nil {
				return err
			}
			os.Remove(dest)
			var err error
			if hard {
				err = os.Link(l.target, dest)
			} else {
				err = os.Symlink(l.target, dest)
			}
			if err != nil {
				return err
			}
		}
	}
	oids := make([]string, 0, len(tablespaces))
	for oid := range tablespaces {
		oids = append(oids, oid)
	}
	sort.Strings(oids)
	for _, oid := range oids {
		dir := filepath.Join(data, "pg_tblspc")
		if err := e.mkdirAll(dir); err != nil {
			return err
		}
		dest := filepath.Join(dir, oid)
		if fi, err := os.Lstat(dest); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			os.Remove(dest)
		}
		if err := os.Symlink(tablespaces[oid], dest); err != nil {
			return err
		}
	}
	wal := filepath.Join(data, walDir)
	if _, err := os.Lstat(wal); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(wal, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// setDirAttributes gives the directories the archives' modes and mtimes,
// once nothing more is created in them.
func (e *extraction) setDirAttributes() error {
	for dir, a := range e.dirs {
		// Never through a link: a mode is the directory's own, not that
		// of wherever a link of the archive points.
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if err := os.Chmod(dir, a.mode); err != nil {
			return err
		}
		if err := os.Chtimes(dir, a.mtime, a.mtime); err != nil {
			return err
		}
	}
	return nil
}

// syncAll fsyncs every file and directory under the roots, jobs at a
// time, as initdb's and pg_basebackup's default --sync-method fsync does
// (fsync_pgdata): the data is on disk before the restore says it is done.
// Links are not followed: their targets are roots of their own.
func syncAll(ctx context.Context, roots []string, jobs int, progress *RestoreProgress) error {
	paths := make(chan string, 256)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(paths)
		for _, root := range roots {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.Type().IsRegular() && !d.IsDir() {
					return nil
				}
				progress.SyncTotal.Add(1)
				select {
				case paths <- p:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	for range max(4, jobs) {
		g.Go(func() error {
			for {
				var p string
				var ok bool
				select {
				case p, ok = <-paths:
				case <-gctx.Done():
					return gctx.Err()
				}
				if !ok {
					return nil
				}
				if err := fsyncPath(p); err != nil {
					return err
				}
				progress.Synced.Add(1)
			}
		})
	}
	return g.Wait()
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}

// writeControl writes global/pg_control, the restore's last file, and
// syncs it with the directories that name it.
func (e *extraction) writeControl(data string) error {
	dest := filepath.Join(data, filepath.FromSlash(controlFile))
	if err := e.mkdirAll(filepath.Dir(dest)); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(e.control)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dest, e.controlAttrs.mode)
	}
	if err == nil {
		err = os.Chtimes(dest, e.controlAttrs.mtime, e.controlAttrs.mtime)
	}
	for _, dir := range []string{filepath.Dir(dest), data} {
		if err == nil {
			err = fsyncPath(dir)
		}
	}
	if err == nil {
		e.progress.Files.Add(1)
	}
	return err
}
