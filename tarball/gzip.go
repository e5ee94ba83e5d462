package tarball

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// gzipCodec compresses blocks in parallel into ONE gzip member: each block
// is deflated with the preceding 32 KiB as its dictionary and ends with a
// sync flush, so the blocks' outputs concatenate into a single deflate
// stream. Barman's restore (Python's tarfile "r|gz") reads the first
// member only: a multi-member file would lose data.
type gzipCodec struct{ level int }

func (gzipCodec) Name() string          { return "gz" }
func (gzipCodec) Ext() string           { return ".gz" }
func (gzipCodec) Compresses() bool      { return true }
func (gzipCodec) NeedsHistory() bool    { return true }
func (c gzipCodec) NewEncoder() Encoder { return &gzipEncoder{level: c.level} }
func (gzipCodec) NewJoiner() Joiner     { return nil }
func (gzipCodec) BarmanRestores() bool  { return true }

// Memory: klauspost's deflate keeps 1.4 MiB an encoder at level 1 to 8,
// 1.9 MiB at 9.
func (gzipCodec) Memory(workers int) int64 { return int64(workers) * 2 << 20 }

// NewDecoder reads the first gzip member only, as Barman's restore does:
// whatever follows is not restored, and the caller sees it left in r.
func (gzipCodec) NewDecoder(r io.Reader) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return zr, nil
}

// gzipHeader is a minimal RFC 1952 header: deflate, no name, no mtime,
// unknown OS, as Python's gzip writes it for a stream.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

type gzipEncoder struct {
	level int
	buf   bytes.Buffer
	fw    *flate.Writer
}

func (e *gzipEncoder) Encode(b Block) ([]byte, error) {
	e.buf.Reset()
	if b.First {
		e.buf.Write(gzipHeader)
	}
	if e.fw == nil {
		fw, err := flate.NewWriterDict(&e.buf, e.level, b.Dict)
		if err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", e.level, err)
		}
		e.fw = fw
	} else {
		e.fw.ResetDict(&e.buf, b.Dict)
	}
	if _, err := e.fw.Write(b.Data); err != nil {
		return nil, err
	}
	// A sync flush ends the block byte-aligned and not final, so the next
	// block's deflate data can follow it directly.
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
