package tarball

import (
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
