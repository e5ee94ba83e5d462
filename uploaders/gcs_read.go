package uploaders

import (
	"context"
	"errors"
	"fmt"
	"io"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// ListDir lists one level (with the delimiter) or every object under
// prefix, with their sizes.
func (g *GCS) ListDir(ctx context.Context, prefix, delimiter string) (Listing, error) {
	var objects []ObjectInfo
	var prefixes []string
	it := g.bucket.Objects(ctx, &storage.Query{Prefix: prefix, Delimiter: delimiter})
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return Listing{}, fmt.Errorf("list %s: %w", prefix, g.classify(err))
		}
		if o.Prefix != "" {
			prefixes = append(prefixes, o.Prefix)
			continue
		}
		objects = append(objects, ObjectInfo{Key: o.Name, Size: o.Size})
	}
	l := listLevel(objects, prefix, "")
	l.Prefixes = sortedPrefixes(prefixes)
	return l, nil
}

// ReadRange streams a range of an object.
func (g *GCS) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	r, err := g.bucket.Object(key).NewRangeReader(ctx, offset, length)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", key, g.classify(err))
	}
	return r, nil
}
