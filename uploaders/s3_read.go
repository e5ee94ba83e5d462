package uploaders

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// ListDir lists one level (delimiter "/") or every key under prefix, a
// thousand keys per request, with their sizes.
func (s *S3) ListDir(ctx context.Context, prefix, delimiter string) (Listing, error) {
	objects, prefixes, err := s.listV2(ctx, prefix, delimiter, 0)
	if err != nil {
		return Listing{}, fmt.Errorf("list %s: %w", prefix, s.classify(err))
	}
	l := listLevel(objects, prefix, "")
	l.Prefixes = sortedPrefixes(prefixes)
	return l, nil
}

// listV2 lists with ListObjectsV2 under prefix, one level (delimiter "/")
// or every key (""), a thousand keys per request, and stops after max
// keys and prefixes when max > 0. Core.ListObjectsV2 takes no context, so
// an interrupt would wait for the store's answer; the client's iterator
// takes ours. A common prefix comes from it as a key with no ETag.
func (s *S3) listV2(ctx context.Context, prefix, delimiter string, max int) (objects []ObjectInfo, prefixes []string, err error) {
	opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: delimiter == "", MaxKeys: 1000}
	if max > 0 {
		opts.MaxKeys = min(max, 1000)
	}
	for o := range s.core.Client.ListObjectsIter(ctx, s.bucket, opts) {
		switch {
		case o.Err != nil:
			return nil, nil, o.Err
		case o.ETag == "" && o.LastModified.IsZero():
			prefixes = append(prefixes, o.Key)
		default:
			objects = append(objects, ObjectInfo{Key: o.Key, Size: o.Size})
		}
		if max > 0 && len(objects)+len(prefixes) >= max {
			break
		}
	}
	return objects, prefixes, ctx.Err()
}

// ReadRange streams a range of an object with one GET.
func (s *S3) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	switch {
	case length >= 0:
		if err := opts.SetRange(offset, offset+length-1); err != nil {
			return nil, err
		}
	case offset > 0:
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, err
		}
	}
	rc, _, _, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("download %s: %w", key, s.classify(err))
	}
	return rc, nil
}
