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
			for j := range blocks {
				if err := ctx.Err(); err != nil {
					return err
				}
				out, err := enc.Encode(j.block)
				if err != nil {
					return fmt.Errorf("compress %s: %w", j.volume.key, err)
				}
				if codec.Compresses() {
					// The encoder reuses its buffer on the next call.
					out = append([]byte(nil), out...)
				}
				j.done <- out
			}
			return nil
		})
	}
	return g.Wait()
}
