package uploaders

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FileStore writes objects as files under a local or mounted directory,
// with the same keys as in a bucket. Every file appears atomically: it is
// written under a temporary name, synced, then renamed.
type FileStore struct {
	root string
}

// NewFileStore returns a store rooted at dir, an absolute path.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("invalid file URL: %q is not an absolute path", dir)
	}
	return &FileStore{root: filepath.Clean(dir)}, nil
}

// fileConfig is a file:///PATH destination.
type fileConfig struct{ root string }

// parseFile reads file:///PATH (or file://localhost/PATH); a remote host
// is refused, as nothing here would reach it.
func parseFile(rawURL string) (*fileConfig, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid destination URL %q: %v", rawURL, err)
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("invalid file URL %q: only local paths (file:///path) are supported", rawURL)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return nil, fmt.Errorf("invalid file URL: %q is not an absolute path", u.Path)
	}
	return &fileConfig{root: u.Path}, nil
}

func (c *fileConfig) open(context.Context) (Store, error) { return NewFileStore(c.root) }

// Close has nothing to release.
func (s *FileStore) Close() error { return nil }

func (s *FileStore) String() string { return "file://" + s.root }

// Prefix is empty: keys are relative to the root directory.
func (s *FileStore) Prefix() string { return "" }

// Limits has no real minimum; a small part size keeps memory low.
func (s *FileStore) Limits() Limits {
	return Limits{MinPartSize: 5 << 20, MaxParts: 10000, MaxObjectSize: 1 << 40}
}

// Test checks that the root directory exists. It is never created, as a
// missing bucket is not: a path whose mount is missing must not fill the
// local disk instead.
func (s *FileStore) Test(ctx context.Context) error {
	return s.checkRoot()
}

func (s *FileStore) checkRoot() error {
	fi, err := os.Stat(s.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &BucketMissingError{Bucket: s.root, Err: err}
	case err != nil:
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrUnreachable, s.root)
	}
	return nil
}

func (s *FileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put writes the object atomically.
func (s *FileStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.checkRoot(); err != nil {
		return err
	}
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	if err := WriteFile(p, data, 0o640); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// WriteFile writes data to path so that it appears whole or not at all,
// and survives a crash once it returns: a temporary file in the same
// directory, synced, renamed over path, and the directory synced. A
// reader never sees half a file (a monitoring job, Barman's tools).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return commitFile(f, path)
}

// commitFile syncs and closes f, a temporary file beside path, renames it
// to path and syncs the directory, so the rename is durable.
func commitFile(f *os.File, path string) error {
	tmp := f.Name()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Create writes the object only if it does not exist yet.
func (s *FileStore) Create(ctx context.Context, key string, data []byte) error {
	if err := s.checkRoot(); err != nil {
		return err
	}
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if errors.Is(err, fs.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get reads an object whole.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// Delete removes the object's file.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (s *FileStore) create(key string) (*os.File, error) {
	if err := s.checkRoot(); err != nil {
		return nil, err
	}
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	return os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
}

func (s *FileStore) commit(f *os.File, key string) error {
	if err := commitFile(f, s.path(key)); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// List returns the keys of files under prefix, sorted; temporary files
// of unfinished writes are not objects.
func (s *FileStore) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// NewMultipart starts an object written part by part at its offsets.
func (s *FileStore) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	f, err := s.create(key)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	return &fileMultipart{store: s, key: key, f: f}, nil
}

type fileMultipart struct {
	store *FileStore
	key   string
	f     *os.File
}

func (m *fileMultipart) Upload(ctx context.Context, p Part) error {
	if _, err := m.f.WriteAt(p.Data, p.Offset); err != nil {
		return fmt.Errorf("write %s part %d: %w", m.key, p.Number, err)
	}
	return nil
}

func (m *fileMultipart) Complete(ctx context.Context) error {
	return m.store.commit(m.f, m.key)
}

// Completed checks the file is there: a local rename has no lost answer.
func (m *fileMultipart) Completed(ctx context.Context) (bool, error) {
	_, err := os.Stat(m.store.path(m.key))
	return err == nil, nil
}

func (m *fileMultipart) Abort(ctx context.Context) error {
	m.f.Close()
	return os.Remove(m.f.Name())
}
