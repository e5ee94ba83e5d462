package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// bandwidth is --max-bandwidth, shared by every upload worker: a worker
// takes a part's bytes from it before sending the part. Nil is no limit.
type bandwidth struct{ limiter *rate.Limiter }

// newBandwidth returns a limit of bytesPerSecond over all workers, or nil
// for none. The bucket holds one upload part, so that tokens gather while
// a part is being sent and one worker alone still reaches the rate; it
// starts empty, so the run never goes above the rate, even at first.
func newBandwidth(bytesPerSecond, partSize int64) *bandwidth {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := int(partSize)
	l := rate.NewLimiter(rate.Limit(bytesPerSecond), burst)
	l.AllowN(time.Now(), burst)
	return &bandwidth{limiter: l}
}

// take waits until n bytes, at most one part, may be sent.
func (b *bandwidth) take(ctx context.Context, n int) error {
	if b == nil || n == 0 {
		return nil
	}
	return b.limiter.WaitN(ctx, min(n, b.limiter.Burst()))
}

// uploaderPool runs n upload workers until the assembler's end job. A
// completion request waits for the object's parts, all of which were
// queued before it. It returns nil only when it has seen the end of the
// stream and every object opened is stored whole.
func uploaderPool(ctx context.Context, t *tracker, n int, maxBandwidth int64, pl *plan, bufs *buffers,
	jobs <-chan *uploadJob) error {
	if err := pl.wait(ctx); err != nil {
		return err
	}
	bw := newBandwidth(maxBandwidth, pl.partSize)
	var ended atomic.Bool
	// A crew, not a bare errgroup: a completion refused because a part
	// failed may return before the part's own worker does, and the part's
	// error is the one to report.
	g, ctx := newCrew(ctx)
	for range n {
		g.Go(func() error {
			for {
				var j *uploadJob
				var ok bool
				select {
				case j, ok = <-jobs:
				case <-ctx.Done():
					return ctx.Err()
				}
				switch {
				case !ok:
					// Whether another worker took the end job is decided
					// once every worker has returned.
					return nil
				case j.end:
					ended.Store(true)
					continue
				}
				if err := work(ctx, t, bw, bufs, j); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if !ended.Load() {
		return cutShort("the assembler's stream")
	}
	if keys := t.unstored(); len(keys) > 0 {
		return fmt.Errorf("%d objects were not stored whole, %s the first", len(keys), keys[0])
	}
	return nil
}

// work handles one job. A part or single request is settled whatever
// happens to it, tokens refused included, so its object's completion
// never waits for a request that will not come.
func work(ctx context.Context, t *tracker, bw *bandwidth, bufs *buffers, j *uploadJob) (err error) {
	if !j.complete {
		defer func() { j.obj.settle(err) }()
	}
	if j.data != nil {
		// Sent (or failed): the chunk can be filled again.
		defer bufs.put(j.data)
	}
	if err := bw.take(ctx, len(j.data)); err != nil {
		return err
	}
	return upload(ctx, t, j)
}

func upload(ctx context.Context, t *tracker, j *uploadJob) error {
	log := zerolog.Ctx(ctx)
	o := j.obj
	start := time.Now()
	switch {
	case j.complete:
		if err := o.await(ctx); err != nil {
			return err
		}
		o.mu.Lock()
		mp := o.mp
		o.mu.Unlock()
		if err := mp.Complete(ctx); err != nil {
			return err
		}
		o.mu.Lock()
		o.done, o.end = true, time.Now()
		o.mu.Unlock()
		log.Debug().Msgf("Completed %s (%d parts, %d bytes)", o.key, o.parts, o.size)
		return nil
	case j.single:
		if err := t.store.Put(ctx, o.key, j.data); err != nil {
			return err
		}
		o.record(start, len(j.data))
		t.count(len(j.data))
		o.mu.Lock()
		o.done, o.end = true, time.Now()
		o.mu.Unlock()
		log.Debug().Msgf("Uploaded %s (%d bytes in %s)", o.key, len(j.data), time.Since(start).Round(time.Millisecond))
		return nil
	default:
		mp, err := o.multipart(ctx, t.store)
		if err != nil {
			return err
		}
		if err := mp.Upload(ctx, uploaders.Part{Number: j.number, Offset: j.offset, Data: j.data, MD5: j.md5}); err != nil {
			return fmt.Errorf("upload %s: %w", o.key, err)
		}
		o.record(start, len(j.data))
		t.count(len(j.data))
		log.Debug().Msgf("Uploaded %s part %d (%d bytes in %s)", o.key, j.number, len(j.data), time.Since(start).Round(time.Millisecond))
		return nil
	}
}
