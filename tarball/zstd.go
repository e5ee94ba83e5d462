package tarball

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdCodec writes each volume as one zstd frame (.tar.zst), as Barman
// 3.20's --zstd names it. One frame, not one per block: Barman 3.20's
// reader is not known to us, and python-zstandard's decompressobj(), the
// one-object reader a streaming restore would use, refuses a second frame
// ("cannot use a decompressobj multiple times", 0.20), so a volume of
// several frames might not restore.
//
// A frame cannot be put together from blocks compressed apart with
// klauspost/compress's public API (a block's offsets and tables depend on
// the blocks before it), so the pool's workers pass the tar blocks
// through and the joiner compresses them, in stream order, into one
// stream. That takes a little less CPU per byte than a frame per 1 MiB
// block, each starting from empty tables, for 1 to 2% less output, but on
// one core: on two idle cores integration/bench/codecs put a 909 MB tar
// of a pgbench PGDATA through at 313 to 331 MB/s against 438 to 455, 1
// GB of /usr/lib at 158 to 162 MB/s against 268 to 275. klauspost's
// WithConcurrentBlocks compresses one frame on several cores, from
// goroutines of its own, but hands its output back later than Add
// returns, and the sealer splits volumes on what has come back.
type zstdCodec struct{ level int }

func (zstdCodec) Name() string         { return "zstd" }
func (zstdCodec) Ext() string          { return ".zst" }
func (zstdCodec) Compresses() bool     { return true }
func (zstdCodec) NeedsHistory() bool   { return false }
func (zstdCodec) NewEncoder() Encoder  { return zstdPassThrough{} }
func (zstdCodec) BarmanRestores() bool { return false }

// Memory is the one joiner's (zstdWindow), by the encoder setting the
// level maps to: the workers pass blocks through.
func (c zstdCodec) Memory(int) int64 {
	switch zstd.EncoderLevelFromZstd(c.level) {
	case zstd.SpeedBestCompression:
		return 38 << 20
	case zstd.SpeedBetterCompression:
		return 8 << 20
	default:
		return 5 << 20
	}
}

func (c zstdCodec) NewJoiner() Joiner {
	return &zstdJoiner{level: zstd.EncoderLevelFromZstd(c.level)}
}

// maxZstdWindow bounds what a zstd stream may make the decoder hold; ours
// declare zstdWindow.
const maxZstdWindow = 128 << 20

// NewDecoder reads the frames, checking their checksums: one per volume,
// or one per 1 MiB block in volumes written before we wrote one frame.
func (zstdCodec) NewDecoder(r io.Reader) (io.ReadCloser, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		return nil, err
	}
	return zr.IOReadCloser(), nil
}

// zstdPassThrough hands the tar blocks to the joiner, which compresses.
type zstdPassThrough struct{}

func (zstdPassThrough) Encode(b Block) ([]byte, error) { return b.Data, nil }

// zstdWindow is the stream's match window, in bytes; a decoder holds it.
// The joiner holds 3.7 MiB mid-volume at level 1, 4.7 MiB at levels 3 to
// 5 (the encoder's history is twice the window, its hash tables 1.3
// MiB), 7.1 MiB at 6 to 9 and 37.5 MiB from 10 (klauspost's best level:
// its match tables are 32 MiB whatever the window); one joiner runs at a
// time, where a frame per block had an encoder per worker. An 8 MiB
// window made pgbench's tar 1.5% smaller for 17% more CPU and 14 MB more
// memory.
const zstdWindow = 1 << 20

// zstdEncoders keeps the stream encoders of finished volumes, by level,
// for the next volumes: an encoder's tables and history are megabytes.
var zstdEncoders [zstd.SpeedBestCompression + 1]sync.Pool

// zstdJoiner compresses a volume's tar blocks, in stream order, into one
// frame with its content checksum.
type zstdJoiner struct {
	level zstd.EncoderLevel
	zw    *zstd.Encoder
	out   zstdSink
}

func (j *zstdJoiner) Add(b []byte) ([]byte, error) {
	if j.zw == nil {
		if err := j.start(); err != nil {
			return nil, err
		}
	}
	if _, err := j.zw.Write(b); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	// Flushed at every block, so that the volume's stored size, which the
	// sealer splits on, lags nothing. Blocks of whole 128 KiB zstd blocks (the
	// engine's 1 MiB) leave nothing to flush.
	if err := j.zw.Flush(); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return j.out.take(), nil
}

func (j *zstdJoiner) Close() ([]byte, error) {
	if j.zw == nil {
		if err := j.start(); err != nil {
			return nil, err
		}
	}
	if err := j.zw.Close(); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	out := j.out.take()
	j.zw.Reset(nil) // the pool must not keep this volume's sink
	zstdEncoders[j.level].Put(j.zw)
	j.zw = nil
	return out, nil
}

func (j *zstdJoiner) start() error {
	if zw, ok := zstdEncoders[j.level].Get().(*zstd.Encoder); ok {
		zw.Reset(&j.out)
		j.zw = zw
		return nil
	}
	// One goroutine: the assembler's. Concurrency 2 encoded pgbench's tar
	// 16% faster for 29% more CPU, from a goroutine per 128 KiB block
	// writing to the sink behind Add's back. WithLowerEncoderMem cost
	// about 10% more CPU per byte for the same output; the window bounds
	// the memory instead. Zero frames: even an empty volume is a frame.
	zw, err := zstd.NewWriter(&j.out, zstd.WithEncoderLevel(j.level), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow), zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
	if err != nil {
		return fmt.Errorf("zstd level %d: %w", j.level, err)
	}
	j.zw = zw
	return nil
}

// zstdSink collects the encoder's output between calls of the joiner, in
// two buffers taken in turn: what Add returned stays intact while Close's
// bytes are appended to it.
type zstdSink struct {
	buf [2][]byte
	cur int
}

func (s *zstdSink) Write(p []byte) (int, error) {
	s.buf[s.cur] = append(s.buf[s.cur], p...)
	return len(p), nil
}

func (s *zstdSink) take() []byte {
	b := s.buf[s.cur]
	s.cur ^= 1
	s.buf[s.cur] = s.buf[s.cur][:0]
	return b
}
