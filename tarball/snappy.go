package tarball

import (
	"bytes"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
)

// snappyCodec writes the snappy framing format (python-snappy's "stream"
// format, which Barman uses): blocks frame independently, and only the
// volume's first keeps the stream identifier, so the volume reads as one
// stream.
type snappyCodec struct{}

func (snappyCodec) Name() string         { return "snappy" }
func (snappyCodec) Ext() string          { return ".snappy" }
func (snappyCodec) Compresses() bool     { return true }
func (snappyCodec) NeedsHistory() bool   { return false }
func (snappyCodec) NewEncoder() Encoder  { return &snappyEncoder{} }
func (snappyCodec) NewJoiner() Joiner    { return nil }
func (snappyCodec) BarmanRestores() bool { return true }

// Memory: the framed output of a block, 0.8 MiB an encoder.
func (snappyCodec) Memory(workers int) int64 { return int64(workers) << 20 }

// NewDecoder reads the framing format, whose chunks carry a masked
// CRC-32C each.
func (snappyCodec) NewDecoder(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(s2.NewReader(r)), nil
}

// snappyStreamID is the framing format's stream identifier chunk.
var snappyStreamID = []byte("\xff\x06\x00\x00sNaPpY")

type snappyEncoder struct {
	buf bytes.Buffer
	sw  *snappy.Writer
}

func (e *snappyEncoder) Encode(b Block) ([]byte, error) {
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
	if !b.First && bytes.HasPrefix(out, snappyStreamID) {
		out = out[len(snappyStreamID):]
	}
	if b.First && len(out) == 0 {
		out = snappyStreamID
	}
	return out, nil
}
