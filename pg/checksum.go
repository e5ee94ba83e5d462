package pg

import "encoding/binary"

// BlockSize is PostgreSQL's page size, BLCKSZ: 8 KiB, the only size the
// builds we back up use.
const BlockSize = 8192

// SegmentBlocks is the number of pages in a relation segment file
// (RELSEG_SIZE, 1 GiB of 8 KiB pages): a page's block number within its
// relation, which its checksum covers, is segment × SegmentBlocks + its
// block in the file.
const SegmentBlocks = 131072

// checksumOffset is pd_checksum's place in the page header
// (src/include/storage/bufpage.h: after the 8-byte pd_lsn).
const checksumOffset = 8

// checksumLanes and fnvPrime are N_SUMS and FNV_PRIME of PostgreSQL's
// src/include/storage/checksum_impl.h: 32 FNV-1a-like hashes over the
// page seen as rows of 32 little-endian uint32 words.
const (
	checksumLanes = 32
	fnvPrime      = 16777619
)

// checksumBases are checksum_impl.h's checksumBaseOffsets, each lane's
// starting state.
var checksumBases = [checksumLanes]uint32{
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
}

// PageChecksum is pg_checksum_page: the checksum PostgreSQL stores in the
// pd_checksum of page (BlockSize bytes), which lies at block blkno of its
// relation (SegmentBlocks per segment file). pd_checksum itself counts as
// zero. The result is 1 to 65535: zero means no checksum. The words are
// read little-endian, as on every server we back up (x86-64, arm64).
func PageChecksum(page []byte, blkno uint32) uint16 {
	_ = page[BlockSize-1]
	sums := checksumBases
	// The first row holds pd_checksum, the low half of its third word.
	first := (*[rowBytes]byte)(page[:rowBytes])
	for lane := range checksumLanes {
		word := binary.LittleEndian.Uint32(first[4*lane:])
		if lane == checksumOffset/4 {
			word &^= 0xffff
		}
		sums[lane] = checksumRound(sums[lane], word)
	}
	checksumRows(&sums, page[rowBytes:BlockSize])
	// Two rounds of zeros, so that the last words mix into every bit.
	var sum uint32
	for lane := range checksumLanes {
		s := checksumRound(checksumRound(sums[lane], 0), 0)
		sum ^= s
	}
	// The block number, so that a page written at the wrong place fails.
	sum ^= blkno
	return uint16(sum%65535 + 1)
}

// rowBytes is one row of the page: a word for each lane.
const rowBytes = 4 * checksumLanes

// checksumRowsGeneric feeds rows, whole rows of the page, to the lanes'
// sums, one row after the other.
func checksumRowsGeneric(sums *[checksumLanes]uint32, rows []byte) {
	for ; len(rows) >= rowBytes; rows = rows[rowBytes:] {
		words := (*[rowBytes]byte)(rows)
		for lane := range checksumLanes {
			sums[lane] = checksumRound(sums[lane], binary.LittleEndian.Uint32(words[4*lane:]))
		}
	}
}

// checksumRound is CHECKSUM_COMP.
func checksumRound(sum, value uint32) uint32 {
	t := sum ^ value
	return t*fnvPrime ^ t>>17
}

// StoredChecksum is the page's pd_checksum.
func StoredChecksum(page []byte) uint16 {
	return binary.LittleEndian.Uint16(page[checksumOffset:])
}
