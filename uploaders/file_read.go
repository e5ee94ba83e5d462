package uploaders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ListDir lists the files whose keys start with prefix, as a bucket
// would: temporary files of unfinished writes are not objects.
func (s *FileStore) ListDir(ctx context.Context, prefix, delimiter string) (Listing, error) {
	if err := s.checkRoot(); err != nil {
		return Listing{}, err
	}
	// Only the directory holding the prefix's last component is read
	// when the listing is one level deep; a recursive one walks below it.
	dir := prefix[:strings.LastIndex(prefix, "/")+1]
	var objects []ObjectInfo
	err := filepath.WalkDir(s.path(dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") && p != s.path(dir) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p == s.path(dir) {
				return nil
			}
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			if delimiter != "" && strings.HasPrefix(key+"/", prefix) {
				// One level: the directory is a common prefix; a file
				// stands for it so listLevel folds it in.
				objects = append(objects, ObjectInfo{Key: key + "/"})
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(key, prefix) && fi.Mode().IsRegular() {
			objects = append(objects, ObjectInfo{Key: key, Size: fi.Size()})
		}
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	return listLevel(objects, prefix, delimiter), nil
}

// ReadRange reads a range of a file.
func (s *FileStore) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", key, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("download %s: %w", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}
