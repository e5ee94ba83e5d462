package tarball

import (
	"archive/tar"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkEncode measures one worker compressing 1 MiB blocks of
// table-like data, per codec: the pool's throughput is about this times
// the number of cores. zstd's workers pass blocks through: its joiner
// compresses (BenchmarkZstdVolume).
func BenchmarkEncode(b *testing.B) {
	data := sample(1 << 20)
	for _, name := range []string{"gz", "bz2", "snappy", "lz4", "zstd"} {
		c, _ := CodecByName(name, 0)
		b.Run(name, func(b *testing.B) {
			enc := c.NewEncoder()
			b.SetBytes(int64(len(data)))
			var out int
			for i := 0; i < b.N; i++ {
				o, err := enc.Encode(Block{Data: data, First: true, Last: true})
				if err != nil {
					b.Fatal(err)
				}
				out = len(o)
			}
			b.ReportMetric(float64(out)/float64(len(data)), "ratio")
		})
	}
}

// BenchmarkZstdVolume measures zstd on a 16 MiB volume of table-like data
// in 1 MiB blocks: as one stream, on the assembler's goroutine (the
// joiner), against one frame per block as the pool made them before
// (klauspost's EncodeAll, 1 MiB window), whose throughput scaled with the
// workers but which Barman's readers cut after the first block.
func BenchmarkZstdVolume(b *testing.B) {
	data := sample(16 << 20)
	const block = 1 << 20
	c, _ := CodecByName("zstd", 0)
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out int
		for i := 0; i < b.N; i++ {
			j := c.NewJoiner()
			out = 0
			for off := 0; off < len(data); off += block {
				o, err := j.Add(data[off : off+block])
				if err != nil {
					b.Fatal(err)
				}
				out += len(o)
			}
			tail, err := j.Close()
			if err != nil {
				b.Fatal(err)
			}
			out += len(tail)
		}
		b.ReportMetric(float64(out)/float64(len(data)), "ratio")
	})
	b.Run("frame-per-block", func(b *testing.B) {
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(block))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		var buf []byte
		var out int
		for i := 0; i < b.N; i++ {
			out = 0
			for off := 0; off < len(data); off += block {
				buf = zw.EncodeAll(data[off:off+block], buf[:0])
				out += len(buf)
			}
		}
		b.ReportMetric(float64(out)/float64(len(data)), "ratio")
	})
}

// BenchmarkWrite measures the sealer's copy of one 64 MiB file into a
// tar stream, plain and with the CRC-32C that backup_manifest records:
// the manifest's cost per byte.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "relation")
	data := sample(64 << 20)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Lstat(path)
	hdr, err := Header(path, "base/5/16384", fi)
	if err != nil {
		b.Fatal(err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, sum := range []bool{false, true} {
		b.Run(fmt.Sprintf("crc32c=%v", sum), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			tw := tar.NewWriter(io.Discard)
			for i := 0; i < b.N; i++ {
				var h hash.Hash32
				if sum {
					h = crc32.New(table)
				}
				var err error
				if h != nil {
					_, err = WriteSum(tw, Entry{Header: hdr, Path: path}, h, nil)
				} else {
					_, err = WriteSum(tw, Entry{Header: hdr, Path: path}, nil, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
