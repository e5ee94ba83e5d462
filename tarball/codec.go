package tarball

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dsnet/compress/bzip2"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/flate"
)

// Codec compresses the tar stream of one archive part. Parallel codecs
// compress independent blocks of the stream on any worker (EncodeBlock);
// the others compress the whole stream in order (NewStream).
type Codec struct {
	// Name is Barman's name for the codec ("gz", "bz2", "snappy", "").
	Name string
	// Ext is the object name suffix after ".tar".
	Ext string
	// Parallel tells whether blocks may be compressed concurrently.
	Parallel bool
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

// CodecByName returns the codec for Barman's compression name.
func CodecByName(name string, level int) (Codec, error) {
	switch name {
	case "":
		return Codec{Name: "", Ext: "", Parallel: true}, nil
	case "gz":
		if level == 0 {
			level = 6
		}
		return Codec{Name: "gz", Ext: ".gz", Parallel: true, Level: level}, nil
	case "bz2":
		if level == 0 {
			level = 9
		}
		return Codec{Name: "bz2", Ext: ".bz2", Parallel: false, Level: level}, nil
	case "snappy":
		return Codec{Name: "snappy", Ext: ".snappy", Parallel: true}, nil
	}
	return Codec{}, fmt.Errorf("unknown compression %q", name)
}

// NeedsCRC tells whether the sealer must compute the part's CRC-32.
func (c Codec) NeedsCRC() bool { return c.Name == "gz" }

// NeedsDict tells whether blocks need the preceding 32 KiB.
func (c Codec) NeedsDict() bool { return c.Name == "gz" }

// NewStream wraps w with the codec's sequential compressor. It is used
// for codecs that are not Parallel; for the others it returns a writer
// that passes data through, since their blocks are compressed later.
func (c Codec) NewStream(w io.Writer) (io.WriteCloser, error) {
	if c.Name == "bz2" {
		return bzip2.NewWriter(w, &bzip2.WriterConfig{Level: c.Level})
	}
	return nopCloser{w}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Encoder compresses blocks for one worker of the pool; it keeps state
// between calls only to reuse allocations.
type Encoder struct {
	codec Codec
	buf   bytes.Buffer
	fw    *flate.Writer
	sw    *snappy.Writer
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
	default:
		return b.Data, nil
	}
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
