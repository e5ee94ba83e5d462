package pg

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
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
// floatFormat is at byte 208. The structure's CRC-32C, its last field,
// must match what precedes it (at byte 288 up to PostgreSQL 17, 292 in
// 18, which added default_char_signedness): a damaged pg_control says
// nothing. An error means the content is not a sound pg_control of a
// server with 8 KiB pages and 1 GiB segments.
func ControlChecksums(control []byte) (bool, error) {
	anchor := math.Float64bits(1234567.0)
	for at := 0; at+48 <= len(control) && at < 512; at += 8 {
		if binary.LittleEndian.Uint64(control[at:]) != anchor {
			continue
		}
		if !controlCRCMatches(control, at+48) {
			return false, errors.New("pg_control: its CRC does not match its content: damaged")
		}
		field := func(i int) uint32 { return binary.LittleEndian.Uint32(control[at+8+4*i:]) }
		if field(0) != BlockSize || field(1) != SegmentBlocks {
			return false, errors.New("pg_control: pages are not 8 KiB in 1 GiB segments, which we cannot check")
		}
		return field(9) != 0, nil
	}
	return false, errors.New("pg_control: no floatFormat: not a pg_control of a little-endian PostgreSQL 13 to 18")
}

// controlCRCMatches tells whether a CRC-32C of the bytes before it is
// stored at a 4-byte boundary within the 64 bytes from from: the crc
// field follows the mock authentication nonce (32 bytes) and at most a
// few fields after data_checksum_version.
func controlCRCMatches(control []byte, from int) bool {
	for at := from; at+4 <= len(control) && at < from+64; at += 4 {
		if crc32.Checksum(control[:at], Castagnoli) == binary.LittleEndian.Uint32(control[at:]) {
			return true
		}
	}
	return false
}
