package tarball

import (
	"fmt"
	"io"
	"strings"
)

// Codec compresses the tar stream of one volume of an archive: blocks of
// the stream are compressed independently by any worker of the pool, and
// their outputs, in stream order (through the codec's Joiner if it has
// one), make a single compressed stream that the codec's decoder, and
// Barman's restore where Barman knows the format, read in one pass. The
// engine asks a codec what it needs; it never looks at its name.
type Codec interface {
	// Name is Barman's name for the compression ("gz", "bz2", "snappy",
	// "lz4", "zstd", "" for none), as backup.info records it.
	Name() string
	// Ext is the object name suffix after ".tar": ".gz", "" for none.
	Ext() string
	// Compresses is false for none, whose stored bytes are the tar bytes.
	Compresses() bool
	// NeedsHistory tells whether a block needs the stream's preceding
	// DictSize bytes (Block.Dict) and the last block the whole stream's
	// CRC-32 and size: one deflate stream across blocks needs both.
	NeedsHistory() bool
	// NewEncoder returns an encoder for one worker of the pool.
	NewEncoder() Encoder
	// NewJoiner returns what puts the blocks' outputs together in stream
	// order, or nil when they simply concatenate.
	NewJoiner() Joiner
	// NewDecoder reads a volume compressed with the codec from r. It
	// checks what the format checks (CRCs), and reads what Barman's
	// streaming restore reads: for gzip, the first member only.
	NewDecoder(r io.Reader) (io.ReadCloser, error)
	// BarmanRestores tells whether Barman 3.4's barman-cloud-restore
	// reads the format; it skips the others with only a warning.
	BarmanRestores() bool
	// Memory is the heap, in bytes, that a pool of workers' encoders and
	// one joiner keep between blocks (TestCodecMemory measures it): the
	// run's memory budget counts it, or the garbage collector would run
	// without end against a soft limit that leaves the codec no room.
	Memory(workers int) int64
}

// Encoder compresses blocks for one worker of the pool, keeping state
// between calls only to reuse allocations.
type Encoder interface {
	// Encode compresses b and returns the bytes to append to the volume,
	// valid until the next call; they may be b.Data itself.
	Encode(b Block) ([]byte, error)
}

// Joiner puts a volume's compressed blocks together in stream order, for
// codecs whose blocks are not byte sequences that simply concatenate; a
// joiner may also do the compressing, where a format cannot be made of
// blocks compressed apart (zstd's one frame).
type Joiner interface {
	// Add takes a block's encoder output and returns the bytes ready,
	// valid until the call after next: the assembler appends Close's
	// bytes to the last block's.
	Add(b []byte) ([]byte, error)
	// Close returns the stream's last bytes.
	Close() ([]byte, error)
}

// Block is a run of a volume's uncompressed tar stream handed to the
// compressor pool.
type Block struct {
	Data []byte
	// Dict is the stream's preceding 32 KiB, for codecs that NeedsHistory.
	Dict  []byte
	First bool
	Last  bool
	// CRC and Size cover the whole volume; set on the last block, for
	// codecs that NeedsHistory.
	CRC  uint32
	Size uint64
}

// DictSize is how much preceding data a block needs (deflate's window).
const DictSize = 32 << 10

// Compression is one compression as the command line, the TOML file, the
// object names and backup.info know it: declared once, here.
type Compression struct {
	// Name is Barman's name (backup.info's compression, "" for none).
	Name string
	// Word is the TOML file's word for it, and its long flag: "gzip".
	Word string
	// Flags are its command-line spellings ("-z", "--gzip"); none has
	// none.
	Flags []string
	// Since is the Barman release that added it ("" for Barman 3.4's own
	// and for none; "ours" for none of Barman's).
	Since string
	Ext   string
	// MinLevel, MaxLevel and DefaultLevel are --compression-level's
	// range and default; all 0 for a codec without levels.
	MinLevel, MaxLevel, DefaultLevel int
	build                            func(level int) Codec
}

// Compressions are the compressions we write, Barman 3.4's first.
var Compressions = []Compression{
	{Name: "", Word: "none", Ext: "", build: func(int) Codec { return none{} }},
	// gzip's default is 4: on a 1.7 GB tar of a pgbench PGDATA,
	// klauspost's level 4 is 1.001x the size of Barman's (Python's zlib
	// at 9) for 30% less CPU than its level 6 (0.986x).
	{Name: "gz", Word: "gzip", Flags: []string{"-z", "--gzip"}, Ext: ".gz", MinLevel: 1, MaxLevel: 9, DefaultLevel: 4,
		build: func(l int) Codec { return gzipCodec{level: l} }},
	{Name: "bz2", Word: "bzip2", Flags: []string{"-j", "--bzip2"}, Ext: ".bz2", MinLevel: 1, MaxLevel: 9, DefaultLevel: 9,
		build: func(l int) Codec { return bzip2Codec{level: l} }},
	{Name: "snappy", Word: "snappy", Flags: []string{"--snappy"}, Ext: ".snappy", build: func(int) Codec { return snappyCodec{} }},
	{Name: "lz4", Word: "lz4", Flags: []string{"--lz4"}, Since: "3.18", Ext: ".lz4", build: func(int) Codec { return lz4Codec{} }},
	// zstd: Barman 3.20's --zstd; Barman maps .zst to zstd since 3.12.
	{Name: "zstd", Word: "zstd", Flags: []string{"--zstd"}, Since: "3.20", Ext: ".zst", MinLevel: 1, MaxLevel: 22, DefaultLevel: 3,
		build: func(l int) Codec { return zstdCodec{level: l} }},
}

// CodecByName returns the codec for Barman's compression name; level 0
// means the codec's default.
func CodecByName(name string, level int) (Codec, error) {
	for _, c := range Compressions {
		if c.Name != name {
			continue
		}
		switch {
		case level != 0 && c.MaxLevel == 0:
			return nil, fmt.Errorf("compression %q has no levels", name)
		case level != 0 && (level < c.MinLevel || level > c.MaxLevel):
			return nil, fmt.Errorf("compression level %d is out of range for %s (%d-%d)", level, name, c.MinLevel, c.MaxLevel)
		case level == 0:
			level = c.DefaultLevel
		}
		return c.build(level), nil
	}
	return nil, fmt.Errorf("unknown compression %q", name)
}

// CodecByExt returns the codec a volume's extension names, at its
// default level: Barman's (none, .gz, .bz2, .snappy; .lz4 from Barman
// 3.18, .zst from 3.20).
func CodecByExt(ext string) (Codec, bool) {
	for _, c := range Compressions {
		if c.Ext == ext {
			return c.build(c.DefaultLevel), true
		}
	}
	return nil, false
}

// CompressionWord is the word for Barman's compression name ("gz" is
// "gzip", "" is "none"), as the TOML file and the summaries spell it.
func CompressionWord(name string) string {
	for _, c := range Compressions {
		if c.Name == name {
			return c.Word
		}
	}
	return name
}

// LevelHelp describes --compression-level's range for each codec that has
// levels: "gzip (1-9, default 4), bzip2 (1-9, default 9)...".
func LevelHelp() string {
	var parts []string
	for _, c := range Compressions {
		if c.MaxLevel > 0 {
			parts = append(parts, fmt.Sprintf("%s (%d-%d, default %d)", c.Word, c.MinLevel, c.MaxLevel, c.DefaultLevel))
		}
	}
	return strings.Join(parts, ", ")
}

// CannotRestore says which Barman releases cannot restore volumes of the
// compression named name, for those Barman 3.4 cannot: "Barman 3.19 and
// older cannot restore them". It is "" for the others.
func CannotRestore(name string) string {
	for _, c := range Compressions {
		if c.Name != name || c.Since == "" {
			continue
		}
		if c.Since == "ours" {
			return "no Barman release restores them"
		}
		var major, minor int
		if _, err := fmt.Sscanf(c.Since, "%d.%d", &major, &minor); err == nil && minor > 0 {
			return fmt.Sprintf("Barman %d.%d and older cannot restore them", major, minor-1)
		}
		return "Barman releases before " + c.Since + " cannot restore them"
	}
	return ""
}
