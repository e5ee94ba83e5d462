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
						out = append(out, joiner.Close()...)
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

func TestZstdFrames(t *testing.T) {
	data := sample(2<<20 + 9)
	c, _ := CodecByName("zstd", 0)
	z := encodeBlocks(t, c, data, 256<<10)
	d, _ := zstd.NewReader(bytes.NewReader(z))
	defer d.Close()
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("zstd round trip: %v", err)
	}
	if len(z) >= len(data)/2 {
		t.Errorf("zstd compressed %d to %d", len(data), len(z))
	}
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
	z = append(z, j.Close()...)
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
// zstd's must stay within its 1 MiB window (it held 10.3 MiB with an 8
// MiB window and WithLowerEncoderMem), bzip2's within its sorting level
// (it held about 13 MiB sorting 700,000-byte pieces at level 9, 11 MiB
// at sort level 5, 7 MiB at 3).
func TestEncoderMemory(t *testing.T) {
	data := sample(1 << 20)
	for name, limit := range map[string]uint64{"zstd": 5 << 20, "bz2": 8 << 20} {
		c, _ := CodecByName(name, 0)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		enc := c.NewEncoder()
		for range 2 {
			if _, err := enc.Encode(Block{Data: data, First: true, Last: true}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(enc)
		held := after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		t.Logf("%s holds %.1f MiB", name, float64(held)/(1<<20))
		if held > limit {
			t.Errorf("%s encoder holds %d bytes between blocks, over %d", name, held, limit)
		}
	}
}
