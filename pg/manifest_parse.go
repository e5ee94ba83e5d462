package pg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BackupManifest is a parsed backup_manifest.
type BackupManifest struct {
	Version int
	// SystemID is the cluster's system identifier; version 2 only.
	SystemID    uint64
	HasSystemID bool
	Files       []ManifestFile
	WALRanges   []WALRange
}

// ManifestFile is one file a manifest lists.
type ManifestFile struct {
	Path string
	// Size is in bytes.
	Size         int64
	LastModified string
	// Algorithm is the checksum's ("CRC32C", "SHA256", ...), "" for none.
	Algorithm string
	// Checksum is the hex of the checksum's bytes, lower case.
	Checksum string
}

// ErrManifestChecksum is a manifest whose text does not match its
// Manifest-Checksum: it was changed or cut after it was written.
var ErrManifestChecksum = errors.New("manifest checksum mismatch")

// ParseManifest reads a manifest with the rules of PostgreSQL's
// src/common/parse_manifest.c: version 1 or 2, a path or an encoded path
// and a size for every file, and a Manifest-Checksum line that is the
// SHA-256 of everything before it (ErrChecksum otherwise).
func ParseManifest(data []byte) (*BackupManifest, error) {
	var raw struct {
		Checksum string       `json:"Manifest-Checksum"`
		Version  json.Number  `json:"PostgreSQL-Backup-Manifest-Version"`
		SystemID *json.Number `json:"System-Identifier"`
		Files    []struct {
			Path        *string     `json:"Path"`
			EncodedPath *string     `json:"Encoded-Path"`
			Size        json.Number `json:"Size"`
			Modified    string      `json:"Last-Modified"`
			Algorithm   string      `json:"Checksum-Algorithm"`
			Checksum    string      `json:"Checksum"`
		} `json:"Files"`
		WALRanges []struct {
			Timeline json.Number `json:"Timeline"`
			Start    string      `json:"Start-LSN"`
			End      string      `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("could not parse backup manifest: %w", err)
	}
	if err := checkManifestSum(data, raw.Checksum); err != nil {
		return nil, err
	}
	m := &BackupManifest{}
	v, err := strconv.Atoi(raw.Version.String())
	if err != nil || (v != 1 && v != 2) {
		return nil, fmt.Errorf("could not parse backup manifest: unexpected manifest version %q", raw.Version)
	}
	m.Version = v
	if raw.SystemID != nil {
		if v < 2 {
			return nil, errors.New("could not parse backup manifest: System-Identifier in a version 1 manifest")
		}
		if m.SystemID, err = strconv.ParseUint(raw.SystemID.String(), 10, 64); err != nil {
			return nil, errors.New("could not parse backup manifest: manifest system identifier not an integer")
		}
		m.HasSystemID = true
	} else if v >= 2 {
		return nil, errors.New("could not parse backup manifest: version 2 without System-Identifier")
	}
	m.Files = make([]ManifestFile, 0, len(raw.Files))
	for _, f := range raw.Files {
		var path string
		switch {
		case f.Path != nil && f.EncodedPath != nil:
			return nil, errors.New("could not parse backup manifest: both path name and encoded path name")
		case f.Path != nil:
			path = *f.Path
		case f.EncodedPath != nil:
			b, err := hex.DecodeString(*f.EncodedPath)
			if err != nil {
				return nil, errors.New("could not parse backup manifest: could not decode file name")
			}
			path = string(b)
		default:
			return nil, errors.New("could not parse backup manifest: missing path name")
		}
		size, err := strconv.ParseInt(f.Size.String(), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("could not parse backup manifest: file size of %q is not an integer", path)
		}
		if f.Checksum != "" && f.Algorithm == "" {
			return nil, errors.New("could not parse backup manifest: checksum without algorithm")
		}
		if _, err := hex.DecodeString(f.Checksum); err != nil {
			return nil, fmt.Errorf("could not parse backup manifest: invalid checksum for file %q", path)
		}
		m.Files = append(m.Files, ManifestFile{Path: path, Size: size, LastModified: f.Modified,
			Algorithm: strings.ToUpper(f.Algorithm), Checksum: strings.ToLower(f.Checksum)})
	}
	for _, r := range raw.WALRanges {
		tli, err := strconv.ParseUint(r.Timeline.String(), 10, 32)
		if err != nil {
			return nil, errors.New("could not parse backup manifest: timeline is not an integer")
		}
		start, err1 := ParseLSN(r.Start)
		end, err2 := ParseLSN(r.End)
		if err1 != nil || err2 != nil {
			return nil, errors.New("could not parse backup manifest: could not parse LSN")
		}
		m.WALRanges = append(m.WALRanges, WALRange{Timeline: uint32(tli), Start: start, End: end})
	}
	return m, nil
}

// checkManifestSum checks want, the manifest's Manifest-Checksum, against the
// SHA-256 of every line but the last, as verify_manifest_checksum does.
func checkManifestSum(data []byte, want string) error {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return errors.New("could not parse backup manifest: last line not newline-terminated")
	}
	penultimate := bytes.LastIndexByte(data[:len(data)-1], '\n')
	if penultimate < 0 {
		return errors.New("could not parse backup manifest: expected at least 2 lines")
	}
	if len(want) != 2*sha256.Size {
		return errors.New("could not parse backup manifest: manifest has no checksum")
	}
	sum := sha256.Sum256(data[:penultimate+1])
	if !strings.EqualFold(want, hex.EncodeToString(sum[:])) {
		return ErrManifestChecksum
	}
	return nil
}
