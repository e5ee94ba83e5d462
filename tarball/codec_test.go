package tarball

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	dsnetbzip2 "github.com/dsnet/compress/bzip2"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// sample is compressible but not trivially so, like table data.
func sample(n int) []byte {
	r := rand.New(rand.NewSource(1))
	words := []string{"postgres", "barman", "tuple", "page", "0000", "wal", "\x00\x00\x00\x01"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.Intn(len(words))])
		b.WriteByte(byte(r.Intn(256)))
	}
	return b.Bytes()[:n]
}

// encodeBlocks compresses data as the pool does: independent blocks, out
// of order on purpose, then concatenated in stream order.
func encodeBlocks(t *testing.T, c Codec, data []byte, size int) []byte {
	t.Helper()
	var blocks []Block
	var prev []byte
	for off := 0; off < len(data) || len(blocks) == 0; off += size {
		end := min(off+size, len(data))
		b := Block{Data: data[off:end], Dict: prev, First: off == 0, Last: end == len(data)}
		if b.Last {
			b.CRC, b.Size = crc32.ChecksumIEEE(data), uint64(len(data))
		}
		prev = data[max(off, end-DictSize):end]
		blocks = append(blocks, b)
	}
	out := make([][]byte, len(blocks))
	enc := c.NewEncoder()
	for i := len(blocks) - 1; i >= 0; i-- {
		o, err := enc.Encode(blocks[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = append([]byte(nil), o...)
	}
	return bytes.Join(out, nil)
}

func TestParallelGzipIsOneMember(t *testing.T) {
	data := sample(3<<20 + 12345)
	c, _ := CodecByName("gz", 0)
	z := encodeBlocks(t, c, data, 256<<10)
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	// Barman's restore reads one gzip member only: so must we.
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("gzip round trip: got %d bytes, want %d", len(got), len(data))
	}
	if len(z) >= len(data) {
		t.Errorf("gzip did not compress: %d -> %d", len(data), len(z))
	}
}

// A tar stream that ends on a block boundary leaves the sealer an empty
// last block: a full block that is not the last, then zero bytes that are.
// Every codec must still close its stream there.
func TestEmptyLastBlock(t *testing.T) {
	data := sample(1 << 20)
	decoders := map[string]func(io.Reader) (io.Reader, error){
		"":       func(r io.Reader) (io.Reader, error) { return r, nil },
		"gz":     func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"bz2":    func(r io.Reader) (io.Reader, error) { return bzip2.NewReader(r), nil },
		"snappy": func(r io.Reader) (io.Reader, error) { return s2.NewReader(r), nil },
		"lz4":    func(r io.Reader) (io.Reader, error) { return lz4.NewReader(r), nil },
		"zstd": func(r io.Reader) (io.Reader, error) {
			d, err := zstd.NewReader(r)
			return d, err
		},
	}
	for name, decode := range decoders {
		t.Run("codec="+name, func(t *testing.T) {
			c, _ := CodecByName(name, 0)
			blocks := []Block{
				{Data: data, First: true},
				{Dict: data[len(data)-DictSize:], Last: true, CRC: crc32.ChecksumIEEE(data), Size: uint64(len(data))},
			}
			enc := c.NewEncoder()
			var z []byte
			joiner := c.NewJoiner()
			for _, b := range blocks {
				out, err := enc.Encode(b)
				if err != nil {
					t.Fatal(err)
				}
				if joiner != nil {
					if out, err = joiner.Add(append([]byte(nil), out...)); err != nil {
						t.Fatal(err)
					}
					if b.Last {
						tail, err := joiner.Close()
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, tail...)
					}
				}
				z = append(z, out...)
			}
			r, err := decode(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d of %d bytes, err %v", len(got), len(data), err)
			}
		})
	}
}

func TestSnappyFramingIsOneStream(t *testing.T) {
	data := sample(2<<20 + 7)
	c, _ := CodecByName("snappy", 0)
	z := encodeBlocks(t, c, data, 300<<10)
	if bytes.Count(z, snappyStreamID) != 1 || !bytes.HasPrefix(z, snappyStreamID) {
		t.Errorf("want exactly one stream identifier, at the start")
	}
	// s2 decodes snappy framing independently of the encoder we use.
	got, err := io.ReadAll(s2.NewReader(bytes.NewReader(z)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("snappy round trip differs")
	}
}

func TestLZ4IsOneFrame(t *testing.T) {
	data := append(sample(2<<20+5), make([]byte, 300000)...)
	c, _ := CodecByName("lz4", 0)
	z := encodeBlocks(t, c, data, 256<<10)
	// pierrec's reader decodes the frame; lz4(1) is tested in integration.
	got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(z)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("lz4 round trip: %v (%d of %d bytes)", err, len(got), len(data))
	}
	if !bytes.HasPrefix(z, lz4Header()) || bytes.Count(z, lz4Header()[:4]) != 1 {
		t.Error("want one frame header")
	}
}

// joinBlocks compresses data as the engine does, encoders and then the
// codec's joiner in stream order, into one volume.
func joinBlocks(t testing.TB, c Codec, data []byte, size int) []byte {
	t.Helper()
	var z []byte
	enc, j := c.NewEncoder(), c.NewJoiner()
	for off := 0; off < len(data) || off == 0; off += size {
		end := min(off+size, len(data))
		out, err := enc.Encode(Block{Data: data[off:end], First: off == 0, Last: end == len(data)})
		if err != nil {
			t.Fatal(err)
		}
		if out, err = j.Add(append([]byte(nil), out...)); err != nil {
			t.Fatal(err)
		}
		if end == len(data) {
			tail, err := j.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tail...)
		}
		z = append(z, out...)
	}
	return z
}

// zstdFrames returns where each frame of a zstd stream ends, and whether
// each has a content checksum, walking frame and block headers without a
// decoder.
func zstdFrames(t testing.TB, z []byte) (ends []int, sums []bool) {
	t.Helper()
	for pos := 0; pos < len(z); {
		if len(z)-pos < 6 || binary.LittleEndian.Uint32(z[pos:]) != 0xFD2FB528 {
			t.Fatalf("no zstd frame at byte %d of %d", pos, len(z))
		}
		fhd := z[pos+4]
		n := pos + 5
		if fhd&0x20 == 0 {
			n++ // window descriptor
		}
		n += []int{0, 1, 2, 4}[fhd&3]
		fcs := []int{0, 2, 4, 8}[fhd>>6]
		if fcs == 0 && fhd&0x20 != 0 {
			fcs = 1
		}
		n += fcs
		for {
			if len(z) < n+3 {
				t.Fatal("truncated zstd frame")
			}
			h := uint32(z[n]) | uint32(z[n+1])<<8 | uint32(z[n+2])<<16
			size := int(h >> 3)
			if h>>1&3 == 1 { // RLE: one byte, repeated
				size = 1
			}
			n += 3 + size
			if h&1 == 1 {
				break
			}
		}
		if fhd&4 != 0 {
			n += 4
		}
		ends, sums = append(ends, n), append(sums, fhd&4 != 0)
		pos = n
	}
	return ends, sums
}

// Barman's zstd readers (python-zstandard's stream_reader and
// decompressobj, at their defaults) stop at the end of the first frame:
// a volume must be one, whatever the engine's block size.
func TestZstdIsOneFrame(t *testing.T) {
	noise := make([]byte, 300000)
	rand.New(rand.NewSource(3)).Read(noise)
	data := append(append(sample(2<<20+9), noise...), make([]byte, 700000)...)
	c, _ := CodecByName("zstd", 0)
	for _, size := range []int{1 << 20, 256 << 10, 100000, len(data)} {
		z := joinBlocks(t, c, data, size)
		ends, sums := zstdFrames(t, z)
		if len(ends) != 1 || !sums[0] {
			t.Fatalf("blocks of %d bytes: frames end at %v, checksums %v; want one frame with its checksum", size, ends, sums)
		}
		d, _ := zstd.NewReader(nil)
		got, err := d.DecodeAll(z, nil)
		d.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("blocks of %d bytes: zstd round trip: %v", size, err)
		}
		if len(z) >= len(data)/2 {
			t.Errorf("zstd compressed %d to %d", len(data), len(z))
		}
	}
	// The frame walk itself: a frame per 1 MiB block, as we wrote before.
	zw, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	var old []byte
	for off := 0; off < len(data); off += 1 << 20 {
		old = zw.EncodeAll(data[off:min(off+1<<20, len(data))], old)
	}
	if ends, _ := zstdFrames(t, old); len(ends) != (len(data)+1<<20-1)>>20 || ends[len(ends)-1] != len(old) {
		t.Errorf("a frame per 1 MiB block of %d bytes: frames end at %v of %d", len(data), ends, len(old))
	}
}

// A stream that fails the checksum is refused: the joiner turned it on.
func TestZstdChecksum(t *testing.T) {
	data := sample(1 << 20)
	c, _ := CodecByName("zstd", 0)
	z := joinBlocks(t, c, data, 256<<10)
	z[len(z)-1] ^= 1 // the checksum's last byte
	d, err := c.NewDecoder(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := io.ReadAll(d); err == nil {
		t.Error("a wrong content checksum went unnoticed")
	}
}

// Encoders go back to a pool at a volume's end: the next volumes, at any
// level, must still make their own stream.
func TestZstdJoinerReuse(t *testing.T) {
	for _, level := range []int{1, 3, 7, 19, 3} {
		c, _ := CodecByName("zstd", level)
		for i, data := range [][]byte{sample(300000), nil, sample(1<<20 + 1)} {
			z := joinBlocks(t, c, data, 128<<10)
			got, err := io.ReadAll(mustDecode(t, c, z))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("level %d, volume %d: %v (%d of %d bytes)", level, i, err, len(got), len(data))
			}
			if ends, _ := zstdFrames(t, z); len(ends) != 1 {
				t.Fatalf("level %d, volume %d: %d frames", level, i, len(ends))
			}
		}
	}
}

func mustDecode(t testing.TB, c Codec, z []byte) io.Reader {
	t.Helper()
	d, err := c.NewDecoder(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestParallelBzip2IsOneStream(t *testing.T) {
	// Random bytes do not shrink in bzip2's run-length step, so their
	// tar block makes several bzip2 blocks; zeros make tiny ones.
	noise := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(noise)
	data := append(append(sample(1700000), make([]byte, 50000)...), noise...)
	c, _ := CodecByName("bz2", 0)
	blocks := encodeBlocks(t, c, data, 1<<20)
	// encodeBlocks concatenates; the joiner turns that into one stream.
	j := c.NewJoiner()
	z, err := j.Add(blocks)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := j.Close()
	if err != nil {
		t.Fatal(err)
	}
	z = append(z, tail...)
	if !bytes.HasPrefix(z, []byte("BZh9")) {
		t.Fatalf("header %q", z[:4])
	}
	// Go's decoder rejects a bad combined CRC: it checks the whole stream.
	got, err := io.ReadAll(bzip2.NewReader(bytes.NewReader(z)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("bzip2 round trip: %v (%d of %d bytes)", err, len(got), len(data))
	}
	out, err := c.NewEncoder().Encode(Block{Data: noise})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; len(out) >= 8; n++ {
		out = out[8+(binary.BigEndian.Uint32(out)+7)/8:]
	}
	if want := (len(noise) + bzip2SortLevel*100000 - 1) / (bzip2SortLevel * 100000); n != want {
		t.Errorf("1 MiB of noise made %d bzip2 blocks, want %d of at most %d bytes", n, want, bzip2SortLevel*100000)
	}
	// libbzip2 is Barman's decoder (Python's bz2 module) and bzip2(1)'s.
	path := filepath.Join(t.TempDir(), "data.tar.bz2")
	if err := os.WriteFile(path, z, 0o600); err != nil {
		t.Fatal(err)
	}
	if bz, err := exec.LookPath("bzip2"); err == nil {
		if out, err := exec.Command(bz, "-t", path).CombinedOutput(); err != nil {
			t.Errorf("bzip2 -t: %v: %s", err, out)
		}
	}
	if py, err := exec.LookPath("python3"); err == nil {
		script := "import bz2, hashlib, sys; print(hashlib.sha256(bz2.open(sys.argv[1]).read()).hexdigest())"
		out, err := exec.Command(py, "-c", script, path).CombinedOutput()
		if want := fmt.Sprintf("%x", sha256.Sum256(data)); err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("python bz2: %v: %s, want %s", err, out, want)
		}
	}
}

// The Huffman stage is redone because dsnet/compress's tables cost about
// 30% on PostgreSQL pages: data whose statistics change within a block
// must come out clearly smaller than dsnet's own stream.
func TestBzip2TablesBeatDsnet(t *testing.T) {
	var data []byte
	r := rand.New(rand.NewSource(3))
	for len(data) < 600000 {
		// Alternate text-like and number-like runs, as heap pages
		// alternate tuple data and line pointers.
		data = append(data, sample(3000+r.Intn(3000))...)
		for range 2000 {
			data = append(data, byte(r.Intn(16)), 0, byte(r.Intn(4)), 0x80)
		}
	}
	var plain bytes.Buffer
	w, err := dsnetbzip2.NewWriter(&plain, &dsnetbzip2.WriterConfig{Level: bzip2SortLevel})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	c, _ := CodecByName("bz2", 0)
	ours, err := c.NewEncoder().Encode(Block{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if float64(len(ours)) > 0.95*float64(plain.Len()) {
		t.Errorf("recoded %d bytes, dsnet %d: table selection gained under 5%%", len(ours), plain.Len())
	}
}

// Code lengths must respect libbzip2's limit even when frequencies grow
// like Fibonacci numbers (the deepest Huffman tree), and make a complete
// prefix code, or decoders reject the table.
func TestHuffmanLengths(t *testing.T) {
	freq := make([]int32, 40)
	a, b := int32(1), int32(1)
	for i := range freq {
		freq[i] = a
		a, b = b, a+b
	}
	freq[7] = 0 // an unused symbol still needs a code
	lens := make([]uint8, len(freq))
	var h huffmanBuilder
	h.lengths(lens, freq, bzip2MaxLen)
	var kraft float64
	for i, l := range lens {
		if l < 1 || l > bzip2MaxLen {
			t.Fatalf("symbol %d: length %d", i, l)
		}
		kraft += 1 / float64(uint64(1)<<l)
	}
	if kraft != 1 {
		t.Errorf("Kraft sum %v, want 1", kraft)
	}
	if lens[len(lens)-1] >= lens[0] {
		t.Errorf("most frequent symbol's code (%d bits) is not shorter than the rarest's (%d)", lens[len(lens)-1], lens[0])
	}
}

func TestBitWriter(t *testing.T) {
	var w bitWriter
	w.write([]byte{0b10100000}, 3)        // 101
	w.write([]byte{0xff, 0b01000000}, 10) // 11111111 01
	w.flush()
	if got := w.take(); !bytes.Equal(got, []byte{0b10111111, 0b11101000}) {
		t.Errorf("bits %08b", got)
	}
}

func TestNoneIsIdentity(t *testing.T) {
	data := sample(100000)
	c, _ := CodecByName("", 0)
	if got := encodeBlocks(t, c, data, 4096); !bytes.Equal(got, data) {
		t.Fatal("uncompressed blocks changed")
	}
	if _, err := CodecByName("zip", 0); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

// What an encoder holds between blocks is per worker, for the whole run:
// bzip2's must stay within its sorting level (it held about 13 MiB
// sorting 700,000-byte pieces at level 9, 11 MiB at sort level 5, 7 MiB
// at 3). zstd's workers hold nothing: its joiner, one at a time (the
// assembler's), holds the stream's encoder: 4.7 MiB at the default level,
// its history twice the 1 MiB window; from level 10, klauspost's best
// level, 37.5 MiB of match tables whatever the window, where a frame per
// block made two workers peak at 154 MB.
func TestEncoderMemory(t *testing.T) {
	data := sample(1 << 20)
	held := func(build func() any, use func(any)) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := build()
		use(x)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(x)
		return after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
	}
	for name, limit := range map[string]uint64{"zstd": 64 << 10, "bz2": 8 << 20} {
		c, _ := CodecByName(name, 0)
		n := held(func() any { return c.NewEncoder() }, func(x any) {
			for range 2 {
				if _, err := x.(Encoder).Encode(Block{Data: data, First: true, Last: true}); err != nil {
					t.Fatal(err)
				}
			}
		})
		t.Logf("%s encoder holds %.1f MiB", name, float64(n)/(1<<20))
		if n > limit {
			t.Errorf("%s encoder holds %d bytes between blocks, over %d", name, n, limit)
		}
	}
	for level, limit := range map[int]uint64{1: 4 << 20, 3: 5 << 20, 7: 9 << 20, 22: 40 << 20} {
		c, _ := CodecByName("zstd", level)
		n := held(func() any { return c.NewJoiner() }, func(x any) {
			for range 3 {
				if _, err := x.(Joiner).Add(data); err != nil {
					t.Fatal(err)
				}
			}
		})
		t.Logf("zstd level %d joiner holds %.1f MiB mid-volume", level, float64(n)/(1<<20))
		if n > limit {
			t.Errorf("zstd level %d joiner holds %d bytes mid-volume, over %d", level, n, limit)
		}
	}
}

func TestCannotRestore(t *testing.T) {
	for name, want := range map[string]string{
		"":     "",
		"gz":   "",
		"lz4":  "Barman 3.17 and older cannot restore them",
		"zstd": "Barman 3.19 and older cannot restore them",
	} {
		if got := CannotRestore(name); got != want {
			t.Errorf("CannotRestore(%q) = %q, want %q", name, got, want)
		}
	}
}

// Each codec's Memory covers what two workers' encoders and a joiner
// really keep after compressing blocks, at every level, so the run's
// memory budget leaves the collector room.
func TestCodecMemory(t *testing.T) {
	data := sample(4 << 20)
	lz4Header() // made once for the process, not a worker's
	for _, comp := range Compressions {
		levels := []int{0}
		if comp.MaxLevel > 0 {
			levels = []int{comp.MinLevel, comp.DefaultLevel, comp.MaxLevel}
		}
		for _, level := range levels {
			c, err := CodecByName(comp.Name, level)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: sync.Pool keeps what it held through one collection.
			runtime.GC()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			encoders := []Encoder{c.NewEncoder(), c.NewEncoder()}
			joiner := c.NewJoiner()
			for i, off := 0, 0; off < len(data); i, off = i+1, off+1<<20 {
				b := Block{Data: data[off : off+1<<20], First: off == 0}
				if off > 0 {
					b.Dict = data[off-DictSize : off]
				}
				out, err := encoders[i%2].Encode(b)
				if err != nil {
					t.Fatal(err)
				}
				if joiner != nil {
					if _, err := joiner.Add(out); err != nil {
						t.Fatal(err)
					}
				}
			}
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&after)
			// The test's own slices and the encoders' structs are bytes,
			// not megabytes: 64 KiB of slack covers them.
			kept := int64(after.HeapAlloc) - int64(before.HeapAlloc) - 64<<10
			if declared := c.Memory(2); kept > declared {
				t.Errorf("%s level %d: two encoders and a joiner keep %.1f MiB, Memory(2) says %.1f MiB",
					comp.Word, level, float64(kept)/(1<<20), float64(declared)/(1<<20))
			}
			runtime.KeepAlive(encoders)
			runtime.KeepAlive(joiner)
		}
	}
}
