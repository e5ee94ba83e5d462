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
)

// BenchmarkEncode measures one worker compressing 1 MiB blocks of
// table-like data, per codec: the pool's throughput is about this times
// the number of cores.
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
					_, err = WriteSum(tw, Entry{Header: hdr, Path: path}, h)
				} else {
					_, err = WriteSum(tw, Entry{Header: hdr, Path: path}, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
