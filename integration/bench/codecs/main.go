// Command codecs measures one codec on a file the way a backup's copy
// phase compresses it: 1 MiB blocks compressed by a pool of workers and
// put together in stream order, without reading PostgreSQL or uploading.
// It prints the input and output sizes, wall and CPU seconds, input MB/s
// and the process's peak RSS, so codec changes can be measured alone.
//
//	go run ./integration/bench/codecs -codec bz2 -workers 2 data.tar
//
// -d decodes FILE, compressed with -codec, as a restore does (the codec's
// NewDecoder, streaming), and reports the decoded bytes as "out": a
// restore of a compressed backup cannot beat its decoder.
//
// -walg compresses the file as WAL-G does instead (one zstd stream from
// klauspost's encoder at zstd.SpeedDefault with its default options, as
// WAL-G's internal/compression/zstd/compressor.go sets them), to compare
// our zstd with it on the same data.
//
// -frames compresses with zstd as we did before writing one frame per
// volume: a frame per block, compressed by the pool's workers (klauspost's
// EncodeAll, 1 MiB window) and concatenated. Barman's one-frame readers
// cannot read that; it is here to measure what the one frame costs.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pgbackup/barman-cloud-backup/tarball"
)

func main() {
	name := flag.String("codec", "zstd", "Barman's compression name: gz, bz2, snappy, lz4, zstd")
	level := flag.Int("level", 0, "compression level; 0 is the codec's default")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "compressor pool size")
	block := flag.Int("block", 1<<20, "block size in bytes, as the engine's BlockSize")
	walg := flag.Bool("walg", false, "compress as WAL-G does (zstd only)")
	frames := flag.Bool("frames", false, "compress with zstd as a frame per block, as before issue 23")
	out := flag.String("o", "", "write the compressed stream to this file")
	decode := flag.Bool("d", false, "decode FILE instead, as a restore does")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: codecs [flags] FILE")
		os.Exit(2)
	}
	in, err := os.Open(flag.Arg(0))
	check(err)
	defer in.Close()
	var w io.Writer = io.Discard
	if *out != "" {
		f, err := os.Create(*out)
		check(err)
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		defer bw.Flush()
		w = bw
	}
	cw := &counter{w: w}
	start := time.Now()
	var read int64
	label := *name
	switch {
	case *decode:
		label = *name + "-d"
		codec, cerr := tarball.CodecByName(*name, *level)
		check(cerr)
		read, err = decodeAll(in, cw, codec)
	case *walg:
		label = "walg-zstd"
		read, err = walgZstd(in, cw)
	case *frames:
		label = "zstd-frames"
		codec, cerr := tarball.CodecByName("zstd", *level)
		check(cerr)
		read, err = pool(in, cw, framesCodec{Codec: codec, level: *level}, *workers, *block)
	default:
		codec, cerr := tarball.CodecByName(*name, *level)
		check(cerr)
		read, err = pool(in, cw, codec, *workers, *block)
	}
	check(err)
	wall := time.Since(start).Seconds()
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	cpu := tv(ru.Utime) + tv(ru.Stime)
	fmt.Printf("%-9s in %d out %d ratio %.4f wall %.2f s cpu %.2f s cpu_ns_per_byte %.2f MB/s %.1f peak_rss_MB %.1f\n",
		label, read, cw.n, float64(cw.n)/float64(read), wall, cpu, cpu*1e9/float64(read),
		float64(read)/1e6/wall, float64(ru.Maxrss)/1024)
}

// decodeAll decodes in to w with codec's streaming decoder; it returns
// the compressed bytes read.
func decodeAll(in io.Reader, w io.Writer, codec tarball.Codec) (int64, error) {
	cr := &countingReader{r: bufio.NewReaderSize(in, 1<<20)}
	dec, err := codec.NewDecoder(cr)
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	_, err = io.Copy(w, dec)
	return cr.n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func walgZstd(in io.Reader, w io.Writer) (int64, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(zw, in)
	if err != nil {
		return n, err
	}
	return n, zw.Close()
}

// framesCodec is zstd as a frame per block: each worker's encoder makes
// its block a frame, and the frames concatenate.
type framesCodec struct {
	tarball.Codec
	level int
}

func (c framesCodec) NewEncoder() tarball.Encoder {
	level := zstd.SpeedDefault
	if c.level != 0 {
		level = zstd.EncoderLevelFromZstd(c.level)
	}
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	check(err)
	return &framesEncoder{zw: zw}
}

func (framesCodec) NewJoiner() tarball.Joiner { return nil }

type framesEncoder struct {
	zw  *zstd.Encoder
	out []byte
}

func (e *framesEncoder) Encode(b tarball.Block) ([]byte, error) {
	if len(b.Data) == 0 {
		return nil, nil
	}
	e.out = e.zw.EncodeAll(b.Data, e.out[:0])
	return e.out, nil
}

type job struct {
	block tarball.Block
	done  chan []byte
}

// pool compresses as the engine does: a reader cutting blocks, n
// workers, and the blocks' outputs taken in stream order.
func pool(in io.Reader, w io.Writer, codec tarball.Codec, n, size int) (int64, error) {
	jobs := make(chan *job, n)
	ordered := make(chan *job, 2*n+2)
	errs := make(chan error, n+1)
	var read int64
	go func() {
		defer close(jobs)
		defer close(ordered)
		first := true
		buf := make([]byte, size)
		// The volume's CRC and size close a gzip stream; deflate's blocks
		// start from the preceding 32 KiB (tarball.Block).
		var crc uint32
		var dict []byte
		for {
			k, err := io.ReadFull(in, buf)
			read += int64(k)
			last := err == io.EOF || err == io.ErrUnexpectedEOF
			if err != nil && !last {
				errs <- err
				return
			}
			if k == 0 && !first {
				// An empty last block closes the stream.
				j := &job{block: tarball.Block{Last: true, Dict: dict, CRC: crc, Size: uint64(read)}, done: make(chan []byte, 1)}
				ordered <- j
				jobs <- j
				return
			}
			data := append([]byte(nil), buf[:k]...)
			crc = crc32.Update(crc, crc32.IEEETable, data)
			j := &job{block: tarball.Block{Data: data, First: first, Last: last, Dict: dict}, done: make(chan []byte, 1)}
			if last {
				j.block.CRC, j.block.Size = crc, uint64(read)
			}
			if codec.NeedsHistory() {
				dict = data[max(0, len(data)-tarball.DictSize):]
			}
			first = false
			ordered <- j
			jobs <- j
			if last {
				return
			}
		}
	}()
	for range n {
		go func() {
			enc := codec.NewEncoder()
			for j := range jobs {
				o, err := enc.Encode(j.block)
				if err != nil {
					errs <- err
					return
				}
				j.done <- append([]byte(nil), o...)
			}
		}()
	}
	joiner := codec.NewJoiner()
	for j := range ordered {
		var o []byte
		select {
		case o = <-j.done:
		case err := <-errs:
			return read, err
		}
		if joiner != nil {
			var err error
			if o, err = joiner.Add(o); err != nil {
				return read, err
			}
		}
		if _, err := w.Write(o); err != nil {
			return read, err
		}
	}
	if joiner != nil {
		tail, err := joiner.Close()
		if err != nil {
			return read, err
		}
		if _, err := w.Write(tail); err != nil {
			return read, err
		}
	}
	return read, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
