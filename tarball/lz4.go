package tarball

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4Codec writes one lz4 frame per volume, named as Barman 3.18's --lz4
// names it and one frame as its writer makes (python-lz4's
// LZ4FrameCompressor, begun on the first chunk, flushed at the close):
// its restore feeds each volume to one LZ4FrameDecompressor, which reads
// the first frame only. Barman 3.4 cannot read it.
type lz4Codec struct{}

func (lz4Codec) Name() string         { return "lz4" }
func (lz4Codec) Ext() string          { return ".lz4" }
func (lz4Codec) Compresses() bool     { return true }
func (lz4Codec) NeedsHistory() bool   { return false }
func (lz4Codec) NewEncoder() Encoder  { return &lz4Encoder{} }
func (lz4Codec) NewJoiner() Joiner    { return nil }
func (lz4Codec) BarmanRestores() bool { return false }

// Memory: the output of a block, at most lz4.CompressBlockBound of 1 MiB
// an encoder; the frame header is made once for the process.
func (lz4Codec) Memory(workers int) int64 { return int64(workers) * (1<<20 + 64<<10) }

// NewDecoder reads the frame; as we write it, it has no checksums, so only
// the tar headers and the manifest catch damage.
func (lz4Codec) NewDecoder(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(lz4.NewReader(r)), nil
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

type lz4Encoder struct{ out []byte }

// Encode compresses a block into lz4 frame blocks: the volume is one frame
// (Barman's decoder reads one), whose blocks are independent.
func (e *lz4Encoder) Encode(b Block) ([]byte, error) {
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
