package actors

import (
	"context"
	"crypto/md5"
	"fmt"
	"hash"

	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// uploadJob is one request for the uploader pool: a part of a multipart
// object, a whole small object, or the completion of an object. The
// assembler ends its stream with a job that has end set and nothing else.
type uploadJob struct {
	end      bool
	obj      *object
	number   int
	offset   int64
	data     []byte
	md5      []byte // data's MD5 when the store sends it, else nil
	single   bool
	complete bool
}

// chunker cuts the stored bytes of one object at a time into upload jobs:
// parts of exactly size bytes but the last, numbered from 1 with their
// offsets in the object, then the job that completes the object; an
// object smaller than one part becomes one single request instead, and
// an empty object one empty request. It holds no goroutine and no
// channel (bytes in, jobs out), so its arithmetic is tested alone.
type chunker struct {
	// size is the plan's part size, in bytes.
	size int
	// newBuf returns an empty buffer of capacity size. It may block: the
	// chunk buffers in flight bound the run's memory.
	newBuf func() ([]byte, error)
	// emit hands a job on; the job's data belongs to it from then on.
	emit func(*uploadJob) error
	// sum, when set, hashes each part as it is filled, for a store that
	// sends every part's MD5 (uploaders.Limits.PartMD5): here the hashing
	// overlaps the uploads instead of holding up a connection.
	sum hash.Hash

	obj    *object
	buf    []byte
	offset int64
}

// start begins obj's bytes.
func (c *chunker) start(obj *object) {
	c.obj, c.buf, c.offset = obj, nil, 0
	if c.sum != nil {
		c.sum.Reset()
	}
}

// write adds stored bytes of the object, emitting every part it fills.
func (c *chunker) write(data []byte) error {
	for len(data) > 0 {
		if c.buf == nil {
			b, err := c.newBuf()
			if err != nil {
				return err
			}
			c.buf = b[:0]
		}
		k := min(len(data), c.size-len(c.buf))
		c.buf = append(c.buf, data[:k]...)
		if c.sum != nil {
			c.sum.Write(data[:k])
		}
		data = data[k:]
		if len(c.buf) == c.size {
			if err := c.part(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *chunker) part() error {
	c.obj.parts++
	j := &uploadJob{obj: c.obj, number: c.obj.parts, offset: c.offset, data: c.buf}
	if c.sum != nil {
		j.md5 = c.sum.Sum(nil)
		c.sum.Reset()
	}
	c.offset += int64(len(c.buf))
	c.buf = nil
	return c.emit(j)
}

// end emits what stores the object once its last byte is written.
func (c *chunker) end() error {
	if c.obj.parts == 0 {
		j := &uploadJob{obj: c.obj, single: true, data: c.buf} // nil data: an empty object
		c.buf = nil
		return c.emit(j)
	}
	if len(c.buf) > 0 {
		if err := c.part(); err != nil {
			return err
		}
	}
	return c.emit(&uploadJob{obj: c.obj, complete: true})
}

// assembler takes compressed blocks in stream order, joins them where the
// codec needs it, and has a chunker cut each object's stored bytes into
// upload jobs for the uploader pool. It ends its stream with an end job
// when, and only when, the sealer's stream ended with one.
func assembler(ctx context.Context, t *tracker, codec tarball.Codec, pl *plan, blockBufs, chunkBufs *buffers,
	ordered <-chan *blockJob, out chan<- *uploadJob) error {
	defer close(out)
	if err := pl.wait(ctx); err != nil {
		return err
	}
	chunkBufs.setSize(int(pl.partSize))
	c := &chunker{
		size:   int(pl.partSize),
		newBuf: func() ([]byte, error) { return chunkBufs.get(ctx) },
		emit: func(j *uploadJob) error {
			// The completion waits for the object's parts: each is
			// counted before it is queued.
			if !j.complete {
				j.obj.queued()
			}
			select {
			case out <- j:
				return nil
			case <-ctx.Done():
				if !j.complete {
					j.obj.settle(ctx.Err())
				}
				return ctx.Err()
			}
		},
	}
	if t.store.Limits().PartMD5 {
		c.sum = md5.New()
	}
	var joiner tarball.Joiner
	for {
		var j *blockJob
		var ok bool
		select {
		case j, ok = <-ordered:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return cutShort("the sealer's stream")
		}
		if j.end {
			select {
			case out <- &uploadJob{end: true}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var data []byte
		select {
		case data = <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.first {
			c.start(t.open(j.volume.key, j.volume.archive))
			joiner = codec.NewJoiner()
		}
		if joiner != nil {
			var err error
			if data, err = joiner.Add(data); err != nil {
				return fmt.Errorf("%s: %w", j.volume.key, err)
			}
			if j.last {
				tail, err := joiner.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", j.volume.key, err)
				}
				data = append(data, tail...)
			}
		}
		j.volume.produced.Add(int64(len(data)))
		raw := j.block.Data
		j.volume.assembled.Add(int64(len(raw)))
		if err := c.write(data); err != nil {
			return err
		}
		// The block's bytes are in the chunk now: its buffer can be reused.
		blockBufs.put(raw)
		if j.last {
			if err := c.end(); err != nil {
				return err
			}
		}
	}
}
