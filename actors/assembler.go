package actors

import (
	"context"
	"fmt"

	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// uploadJob is one request for the uploader pool: a part of a multipart
// object, a whole small object, or the completion of an object.
type uploadJob struct {
	obj      *object
	number   int
	offset   int64
	data     []byte
	single   bool
	complete bool
}

// assembler takes compressed blocks in stream order, cuts each object's
// stored bytes into upload parts of the plan's part size, all equal but the
// last, and queues them for the uploader pool; an object smaller than one
// part is stored in one request.
func assembler(ctx context.Context, t *tracker, codec tarball.Codec, pl *plan, blockBufs, chunkBufs *buffers,
	ordered <-chan *blockJob, out chan<- *uploadJob) error {
	defer close(out)
	if err := pl.wait(ctx); err != nil {
		return err
	}
	size := int(pl.partSize)
	chunkBufs.setSize(size)
	send := func(j *uploadJob) error {
		if !j.complete {
			j.obj.wg.Add(1)
		}
		select {
		case out <- j:
			return nil
		case <-ctx.Done():
			if !j.complete {
				j.obj.wg.Done()
			}
			return ctx.Err()
		}
	}
	var obj *object
	var buf []byte
	var offset int64
	var err error
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
			return nil
		}
		var data []byte
		select {
		case data = <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.first {
			obj = t.open(j.volume.key, j.volume.archive)
			buf, offset = nil, 0
			joiner = codec.NewJoiner()
		}
		if joiner != nil {
			if data, err = joiner.Add(data); err != nil {
				return fmt.Errorf("%s: %w", j.volume.key, err)
			}
			if j.last {
				data = append(data, joiner.Close()...)
			}
		}
		j.volume.produced.Add(int64(len(data)))
		raw := j.block.Data
		j.volume.assembled.Add(int64(len(raw)))
		for len(data) > 0 {
			if buf == nil {
				if buf, err = chunkBufs.get(ctx); err != nil {
					return err
				}
			}
			k := min(len(data), size-len(buf))
			buf = append(buf, data[:k]...)
			data = data[k:]
			if len(buf) == size {
				obj.parts++
				if err := send(&uploadJob{obj: obj, number: obj.parts, offset: offset, data: buf}); err != nil {
					return err
				}
				offset += int64(len(buf))
				buf = nil
			}
		}
		// The block's bytes are in the chunk now: its buffer can be reused.
		blockBufs.put(raw)
		if !j.last {
			continue
		}
		switch {
		case obj.parts == 0 && buf == nil:
			// The volume is empty: store an empty object.
			if err := send(&uploadJob{obj: obj, single: true}); err != nil {
				return err
			}
		case obj.parts == 0:
			if err := send(&uploadJob{obj: obj, single: true, data: buf}); err != nil {
				return err
			}
		default:
			if len(buf) > 0 {
				obj.parts++
				if err := send(&uploadJob{obj: obj, number: obj.parts, offset: offset, data: buf}); err != nil {
					return err
				}
			}
			if err := send(&uploadJob{obj: obj, complete: true}); err != nil {
				return err
			}
		}
		buf = nil
	}
}
