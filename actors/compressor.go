package actors

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// compressorPool compresses blocks on n workers. It sends on no channel
// of its own: each result goes to the job's one-slot done channel, where
// the assembler picks results up in stream order.
func compressorPool(ctx context.Context, codec tarball.Codec, n int, blocks <-chan *blockJob) error {
	g, ctx := errgroup.WithContext(ctx)
	for range n {
		g.Go(func() error {
			enc := codec.NewEncoder()
			for {
				var j *blockJob
				var ok bool
				select {
				case j, ok = <-blocks:
				case <-ctx.Done():
					return ctx.Err()
				}
				if !ok {
					// Whether the sealer finished or failed, its ordered
					// stream tells the assembler; there is nothing to decide here.
					return nil
				}
				out, err := enc.Encode(j.block)
				if err != nil {
					return fmt.Errorf("compress %s: %w", j.volume.key, err)
				}
				// The encoder reuses its buffer on the next call; a block it
				// passes through (zstd's, which its joiner compresses in
				// order) stays the assembler's until it is written.
				if codec.Compresses() && !sameStart(out, j.block.Data) {
					out = append([]byte(nil), out...)
				}
				j.done <- out // one slot, this job's alone: never blocks
			}
		})
	}
	return g.Wait()
}

// sameStart tells whether a and b share their first byte: an encoder's
// output that is its block itself.
func sameStart(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }
