package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// object is one stored object being uploaded: a volume of an archive.
// Who writes what, and when:
//   - key and archive: the tracker, when the assembler opens the object;
//     never written again.
//   - parts: the assembler's chunker, before it queues each part; the
//     uploader reads it only for the job that completes the object, which
//     is queued after every part (the channel orders the two).
//   - pending and failed (under mu), idle: the assembler counts each part
//     or single request before queueing it (queued); the uploader that
//     handles it settles it, whether it was sent or not, with its error.
//     The completion waits (await) until none is pending, and refuses to
//     complete an object one of whose parts failed.
//   - the fields under mu: the uploader pool. mp is set by the first part
//     sent (multipart), done and end by the request that stores the object
//     (Complete, or the single Put), start, serialized and size by every
//     request (record). The tracker reads them under mu.
type object struct {
	key     string
	archive string
	parts   int
	// idle has one slot; settle signals it when pending reaches 0.
	idle chan struct{}

	mu         sync.Mutex
	pending    int
	failed     error
	mp         uploaders.Multipart
	done       bool
	start, end time.Time
	// serialized is the sum of the object's request times.
	serialized time.Duration
	// size is the bytes stored so far.
	size int64
}

// queued counts one more request for the object.
func (o *object) queued() {
	o.mu.Lock()
	o.pending++
	o.mu.Unlock()
}

// settle records the outcome of one request that queued counted; err is
// nil when it was stored.
func (o *object) settle(err error) {
	o.mu.Lock()
	o.pending--
	if err != nil && o.failed == nil {
		o.failed = err
	}
	idle := o.pending == 0
	o.mu.Unlock()
	if idle {
		select {
		case o.idle <- struct{}{}:
		default: // already signalled
		}
	}
}

// await waits until every request queued for the object is settled, all
// of them stored, or the run ends. It is called once every request is
// queued (the completion job comes after the parts), so pending only
// falls while it waits.
func (o *object) await(ctx context.Context) error {
	for {
		o.mu.Lock()
		pending, failed := o.pending, o.failed
		o.mu.Unlock()
		switch {
		case failed != nil:
			return fmt.Errorf("%w: %s: %w", errPartFailed, o.key, failed)
		case pending == 0:
			return nil
		}
		select {
		case <-o.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// multipart starts the object's multipart upload on first use.
func (o *object) multipart(ctx context.Context, store uploaders.Store) (uploaders.Multipart, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mp == nil {
		mp, err := store.NewMultipart(ctx, o.key)
		if err != nil {
			return nil, err
		}
		o.mp = mp
	}
	return o.mp, nil
}

func (o *object) record(start time.Time, n int) {
	end := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.start.IsZero() || start.Before(o.start) {
		o.start = start
	}
	o.serialized += end.Sub(start)
	o.size += int64(n)
}

// tracker knows every object of the run: for the statistics, and to
// abort any multipart upload a failure leaves open.
type tracker struct {
	store    uploaders.Store
	progress *Progress
	mu       sync.Mutex
	objects  []*object
	// manifest is backup.info once stored: not an archive, but an
	// object of the run all the same.
	manifest *StoredObject
}

func (t *tracker) storedManifest(key string, size int) {
	t.mu.Lock()
	t.manifest = &StoredObject{Key: key, Size: int64(size)}
	t.mu.Unlock()
}

func newTracker(store uploaders.Store, p *Progress) *tracker {
	return &tracker{store: store, progress: p}
}

// count counts an upload that succeeded.
func (t *tracker) count(n int) {
	t.progress.Stored.Add(int64(n))
	t.progress.Parts.Add(1)
}

func (t *tracker) open(key, archive string) *object {
	o := &object{key: key, archive: archive, idle: make(chan struct{}, 1)}
	t.mu.Lock()
	t.objects = append(t.objects, o)
	t.mu.Unlock()
	return o
}

func (t *tracker) stored() []StoredObject {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []StoredObject
	for _, o := range t.objects {
		o.mu.Lock()
		out = append(out, StoredObject{Key: o.key, Size: o.size})
		o.mu.Unlock()
	}
	if t.manifest != nil {
		out = append(out, *t.manifest)
	}
	return out
}

func (t *tracker) bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, o := range t.objects {
		o.mu.Lock()
		n += o.size
		o.mu.Unlock()
	}
	return n
}

// unstored names the objects not stored whole: after a run whose actors
// all succeeded it is empty, and the run checks so before it writes DONE.
func (t *tracker) unstored() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for _, o := range t.objects {
		o.mu.Lock()
		if !o.done {
			keys = append(keys, o.key)
		}
		o.mu.Unlock()
	}
	return keys
}

// abortAll aborts every multipart upload not completed. It runs once the
// actors have returned, so no upload is in flight.
func (t *tracker) abortAll(ctx context.Context) {
	t.mu.Lock()
	objs := append([]*object(nil), t.objects...)
	t.mu.Unlock()
	for _, o := range objs {
		o.mu.Lock()
		mp, done := o.mp, o.done
		o.mu.Unlock()
		if mp != nil && !done {
			if err := mp.Abort(ctx); err != nil {
				zerolog.Ctx(ctx).Error().Msgf("abort upload of %s: %v", o.key, err)
			}
		}
	}
}

// stats builds copy_stats the way Barman computes it: per archive, the
// wall time from its first part's start to its last object's end, and the
// sum of all part upload times.
func (t *tracker) stats(copyStart, copyEnd time.Time, workers int) *pg.CopyStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := &pg.CopyStats{TotalTime: pg.Seconds(copyEnd.Sub(copyStart)), NumberOfWorkers: workers}
	type span struct {
		start, end time.Time
		serial     time.Duration
	}
	var order []string
	spans := map[string]*span{}
	var all span
	for _, o := range t.objects {
		sp, ok := spans[o.archive]
		if !ok {
			sp = &span{start: o.start, end: o.end}
			spans[o.archive] = sp
			order = append(order, o.archive)
		}
		if o.start.Before(sp.start) {
			sp.start = o.start
		}
		if o.end.After(sp.end) {
			sp.end = o.end
		}
		sp.serial += o.serialized
		if all.start.IsZero() || o.start.Before(all.start) {
			all.start = o.start
		}
		if o.end.After(all.end) {
			all.end = o.end
		}
		all.serial += o.serialized
	}
	for _, name := range order {
		sp := spans[name]
		cs.CopyTimePerItem = append(cs.CopyTimePerItem, pg.ItemTime{Name: name, Seconds: pg.Seconds(sp.end.Sub(sp.start))})
		cs.SerializedCopyTimePerItem = append(cs.SerializedCopyTimePerItem, pg.ItemTime{Name: name, Seconds: pg.Seconds(sp.serial)})
	}
	cs.CopyTime = pg.Seconds(all.end.Sub(all.start))
	cs.SerializedCopyTime = pg.Seconds(all.serial)
	return cs
}
