package tarball

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"

	"github.com/dsnet/compress/bzip2"
)

// Parallel bzip2. A bzip2 stream is a header, bit-aligned blocks that each
// carry their own CRC, and an end marker with a CRC combined from the
// blocks' in order. So workers compress each block of the tar stream as
// a stream of its own, and an ordered joiner splices their bzip2 blocks
// into a single stream, which is what Barman's streaming restore and
// bzip2(1) read.

// bzip2SortLevel caps the size of the bzip2 blocks a worker sorts, in
// 100,000 bytes after bzip2's first run-length step: dsnet/compress sorts
// the block doubled, with 8-byte suffix indexes, and its encoder held
// about 13 MiB at level 9 (two workers took the backup's peak RSS to 118
// MB), 11 MiB at level 5 (112 MB), 7 MiB at level 3 (104 MB) and about 4
// MiB at level 2, which keeps the run under the 100 MB every other codec
// keeps. A tar block of compressible pages still makes one bzip2 block,
// since the run-length step shrinks it first: on a pgbench PGDATA level 3
// costs 1.0% of size against level 5, and level 2 0.8% more.
const bzip2SortLevel = 2

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

// Memory: 4.9 MiB an encoder (bzip2SortLevel caps its sort), with its
// recoder and its output.
func (bzip2Codec) Memory(workers int) int64 { return int64(workers) * 5 << 20 }

// NewDecoder reads the stream, checking its block and stream CRCs.
func (bzip2Codec) NewDecoder(r io.Reader) (io.ReadCloser, error) { return bzip2.NewReader(r, nil) }

type bzip2Encoder struct {
	level int
	buf   bytes.Buffer
	bw    *bzip2.Writer
	// tables redoes the Huffman stage of bw's blocks (bzip2tables.go).
	tables bzip2Recoder
	out    []byte
}

// Encode compresses b; each of its blocks comes out as [bit count][block
// CRC][block bits], for the joiner.
func (e *bzip2Encoder) Encode(b Block) ([]byte, error) {
	e.out = e.out[:0]
	if len(b.Data) == 0 {
		return e.out, nil
	}
	e.buf.Reset()
	// One writer per worker, reset for each block: its block-sorting
	// state is several megabytes.
	if e.bw == nil {
		w, err := bzip2.NewWriter(&e.buf, &bzip2.WriterConfig{Level: min(e.level, bzip2SortLevel)})
		if err != nil {
			return nil, err
		}
		e.bw = w
	} else if err := e.bw.Reset(&e.buf); err != nil {
		return nil, err
	}
	if _, err := e.bw.Write(b.Data); err != nil {
		return nil, err
	}
	if err := e.bw.Close(); err != nil {
		return nil, err
	}
	s := e.buf.Bytes()
	var streamCRC uint32
	for pos := 32; ; {
		in := bitIn{s: s, pos: pos}
		if pos+80 <= len(s)*8 && uint64(in.read(24))<<24|uint64(in.read(24)) == bzip2EndMagic {
			if in.read(32) != streamCRC {
				return nil, errors.New("bzip2: stream CRC does not match its blocks'")
			}
			return e.out, nil
		}
		block, nbits, crc, next, err := e.tables.recode(s, pos)
		if err != nil {
			return nil, err
		}
		var head [8]byte
		binary.BigEndian.PutUint32(head[:4], uint32(nbits))
		binary.BigEndian.PutUint32(head[4:], crc)
		e.out = append(e.out, head[:]...)
		e.out = append(e.out, block...)
		streamCRC = bits.RotateLeft32(streamCRC, 1) ^ crc
		pos = next
	}
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

func (j *bzip2Joiner) Close() ([]byte, error) {
	if !j.started {
		j.Add(nil)
	}
	var tail [10]byte
	binary.BigEndian.PutUint64(tail[:8], bzip2EndMagic<<16|uint64(j.crc>>16))
	binary.BigEndian.PutUint16(tail[8:], uint16(j.crc))
	j.w.write(tail[:], 80)
	j.w.flush()
	return j.w.take(), nil
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
