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
	var objects []ObjectInfo
	var prefixes []string
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return Listing{}, err
		}
		res, err := s.core.ListObjectsV2(s.bucket, prefix, "", token, delimiter, 1000)
		if err != nil {
			return Listing{}, fmt.Errorf("list %s: %w", prefix, s.classify(err))
		}
		for _, o := range res.Contents {
			objects = append(objects, ObjectInfo{Key: o.Key, Size: o.Size})
		}
		for _, p := range res.CommonPrefixes {
			prefixes = append(prefixes, p.Prefix)
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			break
		}
		token = res.NextContinuationToken
	}
	l := listLevel(objects, prefix, "")
	l.Prefixes = sortedPrefixes(prefixes)
	return l, nil
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
