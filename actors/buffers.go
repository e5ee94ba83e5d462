package actors

import "context"

// buffers is a bounded free list: at most n buffers of size bytes ever
// exist, so the memory a stage holds is fixed by design, and a stage that
// runs out waits for a later one to give a buffer back (backpressure).
type buffers struct {
	free chan []byte
	size int
}

func newBuffers(n, size int) *buffers {
	b := &buffers{free: make(chan []byte, n), size: size}
	for range n {
		b.free <- nil // allocated on first use
	}
	return b
}

// setSize sets the size of the buffers not yet allocated. The one actor
// that gets buffers calls it before its first get (put never reads it).
func (b *buffers) setSize(size int) { b.size = size }

// get waits for a free buffer; it returns it empty.
func (b *buffers) get(ctx context.Context) ([]byte, error) {
	select {
	case buf := <-b.free:
		if buf == nil {
			buf = make([]byte, 0, b.size)
		}
		return buf[:0], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put gives a buffer back; it must have come from get.
func (b *buffers) put(buf []byte) {
	select {
	case b.free <- buf:
	default: // not ours: drop it rather than block
	}
}
