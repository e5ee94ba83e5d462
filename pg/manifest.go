// Package manifest writes and reads PostgreSQL's backup_manifest: the
// JSON file pg_basebackup puts at the root of every backup, listing each
// file with its size, modification time and checksum, the WAL the backup
// needs, and a SHA-256 of the manifest itself. PostgreSQL's own
// pg_verifybackup checks a restored backup against it, and
// barman-cloud-backup-verify checks the stored archives against it.
//
// The format is PostgreSQL's: src/backend/backup/backup_manifest.c writes
// it, src/common/parse_manifest.c reads it.
package pg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ManifestName is the manifest's file name at the root of a backup.
const ManifestName = "backup_manifest"

// Castagnoli is CRC-32C, the checksum pg_basebackup writes by default
// (its --manifest-checksums=CRC32C); Go computes it with the CPU's CRC32
// instruction where there is one.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ManifestVersion is the manifest version a server of version (server_version_num)
// writes: PostgreSQL 17 added System-Identifier and numbered that 2;
// PostgreSQL 13 to 16 write 1.
func ManifestVersion(serverVersion int64) int {
	if serverVersion >= 170000 {
		return 2
	}
	return 1
}

// WALRange is one entry of WAL-Ranges: the WAL of timeline Timeline from
// Start to End (LSNs) that a restore of the backup must replay.
type WALRange struct {
	Timeline uint32
	Start    uint64
	End      uint64
}

// FormatLSN writes an LSN as PostgreSQL's "%X/%X" does.
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}

// ManifestPath is the path a manifest records for the tar member name of archive
// ("data", or a tablespace's OID): relative to the data directory, without
// Barman's "./" prefix for files at the root, and under pg_tblspc/OID/ for
// a tablespace, as pg_basebackup records tablespace files
// (backup_manifest.c, AddFileToBackupManifest).
func ManifestPath(archive, member string) string {
	p := strings.TrimPrefix(member, "./")
	if archive == "data" {
		return p
	}
	return "pg_tblspc/" + archive + "/" + p
}

// ManifestBuilder collects the files of a backup as they are stored and renders
// the manifest once the backup's WAL range is known. It holds one small
// record per file: memory grows with the number of files, not their size,
// by about 40 bytes plus the path's length each (8 MB for 200,000
// relation files). The records and the paths hold no pointers, so the
// garbage collector never scans them, however many there are.
type ManifestBuilder struct {
	files []manifestFile
	// paths holds every file's path end to end; a record says where.
	paths []byte
	// root indexes the entries at the data directory's root: only there
	// can two members have one path (a configuration file from outside
	// PGDATA is added under its base name), and as tar extraction keeps
	// the last, so does the manifest.
	root map[string]int
	gone int
}

type manifestFile struct {
	// path is paths[at : at+n].
	at    int
	n     int32
	crc   uint32
	size  int64
	mtime int64
	gone  bool
}

// NewManifestBuilder starts an empty manifest.
func NewManifestBuilder() *ManifestBuilder {
	return &ManifestBuilder{root: map[string]int{}}
}

// Add records a file stored at path (see Path) with its size in bytes,
// its modification time and the CRC-32C of its stored bytes. A later
// file at the same root path replaces the earlier one.
func (b *ManifestBuilder) Add(path string, size int64, mtime time.Time, crc uint32) {
	if !strings.Contains(path, "/") {
		if i, ok := b.root[path]; ok {
			b.files[i].gone = true
			b.gone++
		}
		b.root[path] = len(b.files)
	}
	b.files = append(b.files, manifestFile{at: len(b.paths), n: int32(len(path)), size: size, mtime: mtime.Unix(), crc: crc})
	b.paths = append(b.paths, path...)
}

// Len is the number of files recorded.
func (b *ManifestBuilder) Len() int { return len(b.files) - b.gone }

// Bytes renders the manifest in memory (see WriteTo).
func (b *ManifestBuilder) Bytes(version int, systemID uint64, ranges []WALRange) []byte {
	var buf bytes.Buffer
	b.WriteTo(&buf, version, systemID, ranges)
	return buf.Bytes()
}

// Size is the length in bytes of the manifest WriteTo writes, found by
// rendering it without keeping it.
func (b *ManifestBuilder) Size(version int, systemID uint64, ranges []WALRange) int64 {
	n, _ := b.WriteTo(io.Discard, version, systemID, ranges)
	return n
}

// WriteTo renders the manifest to w as backup_manifest.c does, byte for
// byte: the header of version 1 or 2 (see Version; systemID, the
// cluster's system identifier, is written by version 2 only), one line
// per file, the WAL ranges, then the SHA-256 of all of that as the last
// line. It streams, one line at a time: a manifest of many files is never
// held whole (200,000 files make about 30 MB of it).
func (b *ManifestBuilder) WriteTo(out io.Writer, version int, systemID uint64, ranges []WALRange) (int64, error) {
	h := sha256.New()
	cw := &countingWriter{w: out}
	both := io.MultiWriter(cw, h)
	var line strings.Builder
	w := func(s string) error {
		_, err := io.WriteString(both, s)
		return err
	}
	if version >= 2 {
		line.WriteString(fmt.Sprintf("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": %d,\n\"Files\": [", systemID))
	} else {
		line.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [")
	}
	first := true
	for _, f := range b.files {
		if f.gone {
			continue
		}
		if first {
			line.WriteString("\n")
			first = false
		} else {
			line.WriteString(",\n")
		}
		writeManifestFile(&line, string(b.paths[f.at:f.at+int(f.n)]), f)
		// Written in lines of about 64 KiB: few writes, little memory.
		if line.Len() >= 64<<10 {
			if err := w(line.String()); err != nil {
				return cw.n, err
			}
			line.Reset()
		}
	}
	line.WriteString("\n],\n\"WAL-Ranges\": [\n")
	for i, r := range ranges {
		sep := ""
		if i > 0 {
			sep = ",\n"
		}
		line.WriteString(fmt.Sprintf("%s{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }",
			sep, r.Timeline, FormatLSN(r.Start), FormatLSN(r.End)))
	}
	line.WriteString("\n],\n")
	if err := w(line.String()); err != nil {
		return cw.n, err
	}
	_, err := io.WriteString(cw, "\"Manifest-Checksum\": \""+hex.EncodeToString(h.Sum(nil))+"\"}\n")
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeManifestFile writes one file's object as AddFileToBackupManifest does: a
// path that is not valid UTF-8 is written hex-encoded as Encoded-Path.
func writeManifestFile(b *strings.Builder, path string, f manifestFile) {
	if utf8.ValidString(path) {
		b.WriteString("{ \"Path\": ")
		escapeJSON(b, path)
		b.WriteString(", ")
	} else {
		b.WriteString("{ \"Encoded-Path\": \"" + hex.EncodeToString([]byte(path)) + "\", ")
	}
	fmt.Fprintf(b, "\"Size\": %d, \"Last-Modified\": \"%s\"", f.size,
		time.Unix(f.mtime, 0).UTC().Format("2006-01-02 15:04:05")+" GMT")
	fmt.Fprintf(b, ", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"%s\" }", CRCHex(f.crc))
}

// CRCHex is a CRC-32C as a manifest writes it: the hex of its four bytes
// in the order they lie in memory (pg_checksum_final copies the integer),
// little-endian on the x86 and ARM machines PostgreSQL runs on.
func CRCHex(crc uint32) string {
	return hex.EncodeToString([]byte{byte(crc), byte(crc >> 8), byte(crc >> 16), byte(crc >> 24)})
}

// escapeJSON quotes s as PostgreSQL's escape_json does (utils/adt/json.c):
// \b \f \n \r \t \" \\ by name, other control characters as \u00XX, and
// every other byte as it is.
func escapeJSON(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < ' ' {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// NewCRC returns a CRC-32C hash for the bytes of one file.
func NewCRC() hash.Hash32 { return crc32.New(Castagnoli) }
