package tarball

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/dsnet/compress/bzip2"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec compresses the tar stream of one archive part: blocks of the
// stream are compressed independently by any worker of the pool, and
// their outputs, in stream order (through the codec's Joiner if it has
// one), make a single compressed stream.
type Codec struct {
	// Name is Barman's name for the codec ("gz", "bz2", "snappy", "lz4",
	// "" for none), or ours ("zstd").
	Name string
	// Ext is the object name suffix after ".tar".
	Ext string
	// Level is the compression level for codecs that have one.
	Level int
}

// Block is a run of a part's uncompressed tar stream handed to the
// compressor pool.
type Block struct {
	Data []byte
	// Dict is the stream's preceding 32 KiB, so deflate can refer back
	// across the block boundary and the result stays one gzip member.
	Dict  []byte
	First bool
	Last  bool
	// CRC and Size cover the whole part; set on the last block.
	CRC  uint32
	Size uint64
}

// DictSize is how much preceding data a parallel block needs.
const DictSize = 32 << 10

// codecs are the compression names we know, with their extension and,
// for those that have levels, the range and the default. lz4 is named and
// framed as Barman 3.18's --lz4, which Barman 3.4 cannot read; zstd is our
// extension: no Barman release compresses base backups with it.
var codecs = map[string]struct {
	ext                          string
	minLevel, maxLevel, defLevel int
}{
	"":       {ext: ""},
	"gz":     {ext: ".gz", minLevel: 1, maxLevel: 9, defLevel: 6},
	"bz2":    {ext: ".bz2", minLevel: 1, maxLevel: 9, defLevel: 9},
	"snappy": {ext: ".snappy"},
	"lz4":    {ext: ".lz4"},
	"zstd":   {ext: ".zst", minLevel: 1, maxLevel: 22, defLevel: 3},
}

// CodecByName returns the codec for Barman's compression name; level 0
// means the codec's default.
func CodecByName(name string, level int) (Codec, error) {
	c, ok := codecs[name]
	switch {
	case !ok:
		return Codec{}, fmt.Errorf("unknown compression %q", name)
	case level != 0 && c.maxLevel == 0:
		return Codec{}, fmt.Errorf("compression %q has no levels", name)
	case level != 0 && (level < c.minLevel || level > c.maxLevel):
		return Codec{}, fmt.Errorf("compression level %d is out of range for %s (%d-%d)", level, name, c.minLevel, c.maxLevel)
	case level == 0:
		level = c.defLevel
	}
	return Codec{Name: name, Ext: c.ext, Level: level}, nil
}

// NeedsCRC tells whether the sealer must compute the part's CRC-32.
func (c Codec) NeedsCRC() bool { return c.Name == "gz" }

// NeedsDict tells whether blocks need the preceding 32 KiB.
func (c Codec) NeedsDict() bool { return c.Name == "gz" }

// Encoder compresses blocks for one worker of the pool; it keeps state
// between calls only to reuse allocations.
type Encoder struct {
	codec Codec
	buf   bytes.Buffer
	fw    *flate.Writer
	sw    *snappy.Writer
	zw    *zstd.Encoder
	bw    *bzip2.Writer
	out   []byte
}

// NewEncoder returns an Encoder for c.
func (c Codec) NewEncoder() *Encoder { return &Encoder{codec: c} }

// gzipHeader is a minimal RFC 1952 header: deflate, no name, no mtime,
// unknown OS, as Python's gzip writes it for a stream.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// snappyStreamID is the framing format's stream identifier chunk.
var snappyStreamID = []byte("\xff\x06\x00\x00sNaPpY")

// Encode compresses b and returns the bytes to append to the part. The
// returned slice is only valid until the next call.
func (e *Encoder) Encode(b Block) ([]byte, error) {
	switch e.codec.Name {
	case "gz":
		return e.encodeGzip(b)
	case "snappy":
		return e.encodeSnappy(b)
	case "lz4":
		return e.encodeLZ4(b)
	case "zstd":
		return e.encodeZstd(b)
	case "bz2":
		return e.encodeBzip2(b)
	default:
		return b.Data, nil
	}
}

// encodeZstd makes each block a zstd frame of its own: a stream of frames
// is one zstd stream to every decoder (zstd -d included).
func (e *Encoder) encodeZstd(b Block) ([]byte, error) {
	if e.zw == nil {
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(e.codec.Level)),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd level %d: %w", e.codec.Level, err)
		}
		e.zw = zw
	}
	if len(b.Data) == 0 {
		return nil, nil
	}
	e.out = e.zw.EncodeAll(b.Data, e.out[:0])
	return e.out, nil
}

// lz4Header is the frame header for independent blocks of up to 4 MiB, no
// checksums; the library writes it, with its header checksum, for an
// empty frame, and the 4-byte end mark follows it. Made on first use: the
// writer allocates 8 MiB of buffers, which a run without lz4 should not
// keep in its heap.
var lz4Header = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(lz4.BlockSizeOption(lz4.Block4Mb), lz4.BlockChecksumOption(false), lz4.ChecksumOption(false)); err != nil {
		panic(err) // the options are constants
	}
	w.Close()
	return buf.Bytes()[:buf.Len()-4]
})

// lz4MaxBlock is the block size lz4Header declares.
const lz4MaxBlock = 4 << 20

// encodeLZ4 compresses a block into an lz4 frame block: the part is one
// frame (Barman's decoder reads one), whose blocks are independent.
func (e *Encoder) encodeLZ4(b Block) ([]byte, error) {
	e.out = e.out[:0]
	if b.First {
		e.out = append(e.out, lz4Header()...)
	}
	for data := b.Data; len(data) > 0; {
		chunk := data[:min(len(data), lz4MaxBlock)]
		data = data[len(chunk):]
		start := len(e.out)
		e.out = append(e.out, make([]byte, 4+lz4.CompressBlockBound(len(chunk)))...)
		n, err := lz4.CompressBlock(chunk, e.out[start+4:], nil)
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		size := uint32(n)
		if n == 0 || n >= len(chunk) {
			// Incompressible: stored as is, flagged by the size's high bit.
			n = copy(e.out[start+4:], chunk)
			size = uint32(n) | 1<<31
		}
		binary.LittleEndian.PutUint32(e.out[start:], size)
		e.out = e.out[:start+4+n]
	}
	if b.Last {
		e.out = append(e.out, 0, 0, 0, 0) // end mark
	}
	return e.out, nil
}

func (e *Encoder) encodeGzip(b Block) ([]byte, error) {
	e.buf.Reset()
	if b.First {
		e.buf.Write(gzipHeader)
	}
	if e.fw == nil {
		fw, err := flate.NewWriterDict(&e.buf, e.codec.Level, b.Dict)
		if err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", e.codec.Level, err)
		}
		e.fw = fw
	} else {
		e.fw.ResetDict(&e.buf, b.Dict)
	}
	if _, err := e.fw.Write(b.Data); err != nil {
		return nil, err
	}
	// A sync flush ends the block byte-aligned and not final, so the next
	// block's deflate data can follow it directly: one gzip member, which
	// is all that Barman's streaming restore reads.
	if b.Last {
		if err := e.fw.Close(); err != nil {
			return nil, err
		}
		var trailer [8]byte
		binary.LittleEndian.PutUint32(trailer[:4], b.CRC)
		binary.LittleEndian.PutUint32(trailer[4:], uint32(b.Size))
		e.buf.Write(trailer[:])
	} else if err := e.fw.Flush(); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

func (e *Encoder) encodeSnappy(b Block) ([]byte, error) {
	e.buf.Reset()
	if e.sw == nil {
		e.sw = snappy.NewBufferedWriter(&e.buf)
	} else {
		e.sw.Reset(&e.buf)
	}
	if _, err := e.sw.Write(b.Data); err != nil {
		return nil, err
	}
	if err := e.sw.Flush(); err != nil {
		return nil, err
	}
	out := e.buf.Bytes()
	// Every block starts its own framed stream; only the part's first
	// keeps the stream identifier so the part reads as one stream.
	if !b.First && bytes.HasPrefix(out, snappyStreamID) {
		out = out[len(snappyStreamID):]
	}
	if b.First && len(out) == 0 {
		out = snappyStreamID
	}
	return out, nil
}
