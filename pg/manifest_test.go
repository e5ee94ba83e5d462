package pg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCRCHexIsPostgresByteOrder(t *testing.T) {
	// CRC-32C's check value (RFC 3720): 0xE3069283 for "123456789";
	// PostgreSQL writes the integer's bytes as they lie in memory.
	crc := crc32.Checksum([]byte("123456789"), Castagnoli)
	if crc != 0xE3069283 {
		t.Fatalf("CRC-32C = %08x", crc)
	}
	if got := CRCHex(crc); got != "839206e3" {
		t.Errorf("CRCHex = %s, want 839206e3", got)
	}
}

// golden is what backup_manifest.c writes for these files, line by line,
// without the checksum line, which the test computes.
const golden = `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-11-24 14:07:15 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "839206e3" },
{ "Path": "pg_tblspc/16384/PG_15_202209061/5/16500", "Size": 0, "Last-Modified": "1970-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/2C000028", "End-LSN": "0/2C000138" }
],
`

func TestBytesMatchPostgresFormat(t *testing.T) {
	b := NewManifestBuilder()
	b.Add(ManifestPath("data", "./PG_VERSION"), 3, time.Date(2026, 11, 24, 15, 7, 15, 999, time.FixedZone("CET", 3600)), 0xE3069283)
	b.Add(ManifestPath("16384", "PG_15_202209061/5/16500"), 0, time.Unix(0, 0), 0)
	out := b.Bytes(1, 0, []WALRange{{Timeline: 1, Start: 0x2C000028, End: 0x2C000138}})
	sum := sha256.Sum256([]byte(golden))
	want := golden + `"Manifest-Checksum": "` + hex.EncodeToString(sum[:]) + "\"}\n"
	if string(out) != want {
		t.Fatalf("manifest:\n%s\nwant:\n%s", out, want)
	}
	m, err := ParseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.HasSystemID || len(m.Files) != 2 || m.Files[1].Path != "pg_tblspc/16384/PG_15_202209061/5/16500" ||
		m.Files[0].Checksum != "839206e3" || m.Files[0].Algorithm != "CRC32C" || m.Files[0].Size != 3 {
		t.Errorf("parsed %+v", m)
	}
	if len(m.WALRanges) != 1 || m.WALRanges[0] != (WALRange{1, 0x2C000028, 0x2C000138}) {
		t.Errorf("WAL ranges %+v", m.WALRanges)
	}
}

func TestVersion2HasSystemIdentifier(t *testing.T) {
	if ManifestVersion(160004) != 1 || ManifestVersion(170000) != 2 || ManifestVersion(180001) != 2 {
		t.Fatal("Version: 17 and later write version 2")
	}
	b := NewManifestBuilder()
	b.Add("PG_VERSION", 3, time.Unix(0, 0), 1)
	out := b.Bytes(2, 7711737989575920341, []WALRange{{Timeline: 3, Start: 1 << 32, End: 1<<32 + 5}})
	if !bytes.HasPrefix(out, []byte("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": 7711737989575920341,\n\"Files\": [\n")) {
		t.Fatalf("header:\n%s", out)
	}
	m, err := ParseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasSystemID || m.SystemID != 7711737989575920341 || m.WALRanges[0].Start != 1<<32 {
		t.Errorf("parsed %+v", m)
	}
	if !strings.Contains(string(out), `"Start-LSN": "1/0", "End-LSN": "1/5"`) {
		t.Errorf("LSNs are %%X/%%X:\n%s", out)
	}
}

func TestPathsAreEscapedAsPostgres(t *testing.T) {
	b := NewManifestBuilder()
	odd := "base/5/a \"q\" \\ \t\n\x01é"
	b.Add(odd, 1, time.Unix(0, 0), 0)
	b.Add("bad\xff", 1, time.Unix(0, 0), 0)
	out := b.Bytes(1, 0, nil)
	if !strings.Contains(string(out), `{ "Path": "base/5/a \"q\" \\ \t\n\u0001é", `) {
		t.Errorf("escaping:\n%s", out)
	}
	if !strings.Contains(string(out), `{ "Encoded-Path": "626164ff", `) {
		t.Errorf("a path that is not UTF-8 must be hex-encoded:\n%s", out)
	}
	m, err := ParseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Files[0].Path != odd || m.Files[1].Path != "bad\xff" {
		t.Errorf("paths read back %q %q", m.Files[0].Path, m.Files[1].Path)
	}
}

func TestLaterRootFileReplacesEarlier(t *testing.T) {
	// A postgresql.conf from outside PGDATA is added after PGDATA's own:
	// extraction keeps the later, so the manifest must describe it.
	b := NewManifestBuilder()
	b.Add("postgresql.conf", 10, time.Unix(0, 0), 1)
	b.Add("base/1/1", 10, time.Unix(0, 0), 2)
	b.Add("postgresql.conf", 20, time.Unix(0, 0), 3)
	if b.Len() != 2 {
		t.Errorf("Len = %d", b.Len())
	}
	m, err := ParseManifest(b.Bytes(1, 0, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[1].Path != "postgresql.conf" || m.Files[1].Size != 20 {
		t.Errorf("files %+v", m.Files)
	}
}

func TestParseRejectsDamage(t *testing.T) {
	b := NewManifestBuilder()
	b.Add("PG_VERSION", 3, time.Unix(0, 0), 1)
	good := b.Bytes(1, 0, []WALRange{{1, 1, 2}})
	flipped := bytes.Replace(good, []byte(`"Size": 3`), []byte(`"Size": 4`), 1)
	if _, err := ParseManifest(flipped); !errors.Is(err, ErrManifestChecksum) {
		t.Errorf("a changed size: %v, want ErrChecksum", err)
	}
	for name, data := range map[string][]byte{
		"cut":          good[:len(good)-10],
		"no-newline":   good[:len(good)-1],
		"version 3":    bytes.Replace(good, []byte("Version\": 1"), []byte("Version\": 3"), 1),
		"not json":     []byte("hello\nworld\n"),
		"empty":        nil,
		"one line":     []byte("{}\n"),
		"bad checksum": bytes.Replace(good, []byte(`"Manifest-Checksum": "`), []byte(`"Manifest-Checksum": "zz`), 1),
	} {
		if _, err := ParseManifest(data); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestPathOfMembers(t *testing.T) {
	for _, c := range [][3]string{
		{"data", "./PG_VERSION", "PG_VERSION"},
		{"data", "base/1/1259", "base/1/1259"},
		{"data", "postgresql.conf", "postgresql.conf"},
		{"data", "backup_label", "backup_label"},
		{"16384", "PG_15_202209061/5/16500", "pg_tblspc/16384/PG_15_202209061/5/16500"},
	} {
		if got := ManifestPath(c[0], c[1]); got != c[2] {
			t.Errorf("Path(%s, %s) = %s, want %s", c[0], c[1], got, c[2])
		}
	}
}

// Streaming gives the same bytes as rendering in memory, Size says how
// many beforehand, and a failing writer's error comes back.
func TestWriteToStreamsWhatBytesRenders(t *testing.T) {
	b := NewManifestBuilder()
	mtime := time.Unix(1764500000, 0)
	// Enough lines to be written in several pieces.
	for i := range 3000 {
		b.Add(fmt.Sprintf("base/5/%d", 16384+i), int64(i)*8192, mtime, uint32(i))
	}
	b.Add("postgresql.conf", 10, mtime, 1)
	b.Add("postgresql.conf", 20, mtime, 2)
	ranges := []WALRange{{Timeline: 1, Start: 0x2C000028, End: 0x2C000138}}
	want := b.Bytes(1, 0, ranges)
	var got bytes.Buffer
	var writes int
	n, err := b.WriteTo(writerFunc(func(p []byte) (int, error) { writes++; return got.Write(p) }), 1, 0, ranges)
	if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo wrote %d bytes (%v), Bytes %d; equal %v", n, err, len(want), bytes.Equal(got.Bytes(), want))
	}
	if writes < 3 {
		t.Errorf("%d writes for %d bytes: not streamed", writes, n)
	}
	if size := b.Size(1, 0, ranges); size != int64(len(want)) {
		t.Errorf("Size %d, rendered %d", size, len(want))
	}
	if _, err := ParseManifest(want); err != nil {
		t.Errorf("the manifest does not parse: %v", err)
	}
	fail := errors.New("disk full")
	if _, err := b.WriteTo(writerFunc(func(p []byte) (int, error) { return 0, fail }), 1, 0, ranges); !errors.Is(err, fail) {
		t.Errorf("WriteTo to a failing writer: %v", err)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkManifestBuilderMemory reports what the builder holds per file
// (heap-bytes/file), for clusters of many relation files.
func BenchmarkManifestBuilderMemory(b *testing.B) {
	mtime := time.Unix(1764500000, 0)
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewManifestBuilder()
		for i := range 200000 {
			m.Add(ManifestPath("data", fmt.Sprintf("base/16384/%d", 100000+i)), 0, mtime, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/200000, "heap-bytes/file")
		runtime.KeepAlive(m)
	}
}
