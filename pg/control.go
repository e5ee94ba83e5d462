package pg

import (
	"encoding/binary"
	"errors"
	"math"
)

// ControlChecksums reads data_checksum_version from the content of a
// cluster's global/pg_control (ControlFileData,
// src/include/catalog/pg_control.h) and tells whether its pages carry
// checksums. The field's place depends on the version, so it is found
// from floatFormat, the double 1234567.0 PostgreSQL stores to check the
// float format: after it come blcksz, relseg_size, xlog_blcksz,
// xlog_seg_size, nameDataLen, indexMaxKeys, toast_max_chunk_size and
// loblksize (uint32 each), float8ByVal (a bool, padded to 4 bytes), then
// data_checksum_version. That holds for PostgreSQL 13 to 18, where
// floatFormat is at byte 208. An error means the content is not a
// pg_control of a server with 8 KiB pages and 1 GiB segments.
func ControlChecksums(control []byte) (bool, error) {
	anchor := math.Float64bits(1234567.0)
	for at := 0; at+48 <= len(control) && at < 512; at += 8 {
		if binary.LittleEndian.Uint64(control[at:]) != anchor {
			continue
		}
		field := func(i int) uint32 { return binary.LittleEndian.Uint32(control[at+8+4*i:]) }
		if field(0) != BlockSize || field(1) != SegmentBlocks {
			return false, errors.New("pg_control: pages are not 8 KiB in 1 GiB segments, which we cannot check")
		}
		return field(9) != 0, nil
	}
	return false, errors.New("pg_control: no floatFormat: not a pg_control of a little-endian PostgreSQL 13 to 18")
}
