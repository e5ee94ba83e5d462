package actors

import (
	"context"
	"fmt"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// plan is what the run learns once the backup has started: what to copy,
// and so how large upload parts must be. The controller fills it and
// closes ready once; the walker, the sealer and the assembler wait for
// ready before they read it.
type plan struct {
	ready  chan struct{}
	layout *pg.Layout
	// partSize is the size of every upload part of an object but its last,
	// in bytes.
	partSize int64
	// capacity is the most one object may hold: partSize times the
	// provider's part count. The sealer starts a new tar file before an
	// object could outgrow it.
	capacity int64
}

func newPlan() *plan { return &plan{ready: make(chan struct{})} }

// wait blocks until the plan is published or the run ends.
func (p *plan) wait(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// minLargePart is the smallest part size we choose on our own: below it,
// requests multiply for no gain in memory worth having.
const minLargePart = 8 << 20

// PartSize is the size of every upload part of an object but its last.
// Within one object all parts but the last are equal, as Cloudflare R2
// requires. It is Barman's rule (cloud.py, CloudUploadController: the
// largest of the provider's minimum, --min-chunk-size, and twice the
// archive size limit divided by the provider's part count, so an object
// twice the limit still fits), except that the limit is first lowered to
// the size of the data to copy when that is smaller, down to 8 MiB parts:
// a 1 GB database needs no 21 MB parts, and the run holds one part per
// upload worker plus one in memory.
func PartSize(maxArchiveSize, dataSize, minChunk int64, l uploaders.Limits) int64 {
	barman := 2 * (maxArchiveSize / int64(l.MaxParts))
	size := barman
	if dataSize > 0 && dataSize < maxArchiveSize {
		size = min(barman, max(minLargePart, 2*(dataSize/int64(l.MaxParts))))
	}
	return max(size, l.MinPartSize, minChunk)
}

// publish completes the plan for layout and releases its readers.
func (p *plan) publish(layout *pg.Layout, partSize int64, l uploaders.Limits) {
	p.layout, p.partSize, p.capacity = layout, partSize, partSize*int64(l.MaxParts)
	close(p.ready)
}

// objectTooLarge is a file that cannot fit in one object even alone.
func objectTooLarge(name string, size, capacity, partSize int64) error {
	return fmt.Errorf("%s (%d bytes) is larger than one object can hold (%d parts of %d bytes): raise --min-chunk-size",
		name, size, capacity/partSize, partSize)
}
