package tarball

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/dsnet/compress/bzip2"
)

// Parallel bzip2. A bzip2 stream is a header, bit-aligned blocks that each
// carry their own CRC, and an end marker with a CRC combined from the
// blocks' in order. So workers compress pieces small enough to be one
// block each as separate streams, and an ordered joiner splices their
// blocks into a single stream, which is what Barman's streaming restore
// and bzip2(1) read.

// bzip2Piece is at most what fits one bzip2 block (900,000 bytes at level
// 9 after the run-length step, which can grow data by a quarter).
const bzip2Piece = 700000

var (
	bzip2BlockMagic = uint64(0x314159265359)
	bzip2EndMagic   = uint64(0x177245385090)
)

// bzip2Codec compresses in parallel into one bzip2 stream (see above).
type bzip2Codec struct{ level int }

func (bzip2Codec) Name() string          { return "bz2" }
func (bzip2Codec) Ext() string           { return ".bz2" }
func (bzip2Codec) Compresses() bool      { return true }
func (bzip2Codec) NeedsHistory() bool    { return false }
func (c bzip2Codec) NewEncoder() Encoder { return &bzip2Encoder{level: c.level} }
func (c bzip2Codec) NewJoiner() Joiner   { return &bzip2Joiner{level: c.level} }
func (bzip2Codec) BarmanRestores() bool  { return true }

// NewDecoder reads the stream, checking its block and stream CRCs.
func (bzip2Codec) NewDecoder(r io.Reader) (io.ReadCloser, error) { return bzip2.NewReader(r, nil) }

type bzip2Encoder struct {
	level int
	buf   bytes.Buffer
	bw    *bzip2.Writer
	out   []byte
}

// Encode compresses b's pieces; each comes out as [bit count][block
// CRC][block bits], for the joiner.
func (e *bzip2Encoder) Encode(b Block) ([]byte, error) {
	e.out = e.out[:0]
	for data := b.Data; len(data) > 0; {
		piece := data[:min(len(data), bzip2Piece*e.level/9)]
		data = data[len(piece):]
		e.buf.Reset()
		// One writer per worker, reset for each piece: its block-sorting
		// state is several megabytes.
		if e.bw == nil {
			w, err := bzip2.NewWriter(&e.buf, &bzip2.WriterConfig{Level: e.level})
			if err != nil {
				return nil, err
			}
			e.bw = w
		} else if err := e.bw.Reset(&e.buf); err != nil {
			return nil, err
		}
		if _, err := e.bw.Write(piece); err != nil {
			return nil, err
		}
		if err := e.bw.Close(); err != nil {
			return nil, err
		}
		nbits, crc, err := bzip2Block(e.buf.Bytes())
		if err != nil {
			return nil, err
		}
		var head [8]byte
		binary.BigEndian.PutUint32(head[:4], uint32(nbits))
		binary.BigEndian.PutUint32(head[4:], crc)
		e.out = append(e.out, head[:]...)
		e.out = append(e.out, e.buf.Bytes()[4:4+(nbits+7)/8]...)
	}
	return e.out, nil
}

// bzip2Block finds the one block of a single-block stream: its length in
// bits (it starts byte-aligned after the 4-byte header) and its CRC.
func bzip2Block(s []byte) (int, uint32, error) {
	if len(s) < 4+10+10 || readBits(s, 32, 48) != bzip2BlockMagic {
		return 0, 0, errors.New("bzip2: unexpected stream layout")
	}
	total := len(s) * 8
	for pad := 0; pad < 8; pad++ {
		end := total - pad - 80
		if end > 32 && readBits(s, end, 48) == bzip2EndMagic {
			crc := uint32(readBits(s, end+48, 32))
			if blockCRC := uint32(readBits(s, 80, 32)); blockCRC != crc {
				return 0, 0, fmt.Errorf("bzip2: piece made %s blocks", "several")
			}
			return end - 32, crc, nil
		}
	}
	return 0, 0, errors.New("bzip2: end of stream not found")
}

// readBits reads n (≤ 64) bits at bit offset off, most significant first.
func readBits(s []byte, off, n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		bit := (s[(off+i)/8] >> (7 - uint((off+i)%8))) & 1
		v = v<<1 | uint64(bit)
	}
	return v
}

type bzip2Joiner struct {
	level   int
	started bool
	crc     uint32
	w       bitWriter
}

func (j *bzip2Joiner) Add(b []byte) ([]byte, error) {
	if !j.started {
		j.started = true
		j.w.out = append(j.w.out, 'B', 'Z', 'h', byte('0'+j.level))
	}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("bzip2: truncated block")
		}
		nbits := int(binary.BigEndian.Uint32(b[:4]))
		crc := binary.BigEndian.Uint32(b[4:8])
		n := (nbits + 7) / 8
		if len(b) < 8+n {
			return nil, errors.New("bzip2: truncated block")
		}
		j.w.write(b[8:8+n], nbits)
		j.crc = bits.RotateLeft32(j.crc, 1) ^ crc
		b = b[8+n:]
	}
	return j.w.take(), nil
}

func (j *bzip2Joiner) Close() []byte {
	if !j.started {
		j.Add(nil)
	}
	var tail [10]byte
	binary.BigEndian.PutUint64(tail[:8], bzip2EndMagic<<16|uint64(j.crc>>16))
	binary.BigEndian.PutUint16(tail[8:], uint16(j.crc))
	j.w.write(tail[:], 80)
	j.w.flush()
	return j.w.take()
}

// bitWriter appends bit strings, most significant bit first.
type bitWriter struct {
	out   []byte
	cur   byte
	nbits uint // bits used in cur
}

func (w *bitWriter) write(src []byte, n int) {
	full := n / 8
	if w.nbits == 0 {
		w.out = append(w.out, src[:full]...)
	} else {
		for _, v := range src[:full] {
			w.out = append(w.out, w.cur|v>>w.nbits)
			w.cur = v << (8 - w.nbits)
		}
	}
	if rest := n % 8; rest > 0 {
		v := src[full]
		for i := 0; i < rest; i++ {
			w.cur |= ((v >> (7 - uint(i))) & 1) << (7 - w.nbits)
			w.nbits++
			if w.nbits == 8 {
				w.out = append(w.out, w.cur)
				w.cur, w.nbits = 0, 0
			}
		}
	}
}

func (w *bitWriter) flush() {
	if w.nbits > 0 {
		w.out = append(w.out, w.cur)
		w.cur, w.nbits = 0, 0
	}
}

// take returns the whole bytes written so far; the partial byte stays.
func (w *bitWriter) take() []byte {
	out := w.out
	w.out = nil
	return out
}
