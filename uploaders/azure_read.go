package uploaders

import (
	"context"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// ListDir lists one level (a hierarchy listing with the delimiter) or
// every blob under prefix, with their sizes.
func (a *Azure) ListDir(ctx context.Context, prefix, delimiter string) (Listing, error) {
	var objects []ObjectInfo
	var prefixes []string
	add := func(name *string, size *int64) {
		var n int64
		if size != nil {
			n = *size
		}
		if name != nil {
			objects = append(objects, ObjectInfo{Key: *name, Size: n})
		}
	}
	if delimiter == "" {
		pager := a.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return Listing{}, fmt.Errorf("list %s: %w", prefix, a.classify(err))
			}
			for _, b := range page.Segment.BlobItems {
				add(b.Name, b.Properties.ContentLength)
			}
		}
		return listLevel(objects, prefix, ""), nil
	}
	pager := a.client.NewListBlobsHierarchyPager(delimiter, &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return Listing{}, fmt.Errorf("list %s: %w", prefix, a.classify(err))
		}
		for _, b := range page.Segment.BlobItems {
			add(b.Name, b.Properties.ContentLength)
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				prefixes = append(prefixes, *p.Name)
			}
		}
	}
	l := listLevel(objects, prefix, "")
	l.Prefixes = sortedPrefixes(prefixes)
	return l, nil
}

// ReadRange streams a range of a blob with one GET.
func (a *Azure) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	opts := &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset}}
	if length >= 0 {
		opts.Range.Count = length
	}
	resp, err := a.client.NewBlobClient(key).DownloadStream(ctx, opts)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("download %s: %w", key, a.classify(err))
	}
	return resp.Body, nil
}
