package pg

import (
	"os"
	"testing"
)

// The first three pages of a heap table that PostgreSQL 15 wrote with
// data checksums on (initdb --data-checksums, 300 rows, CHECKPOINT): the
// checksum we compute is the one it stored, at its block number only.
func TestPageChecksumOfRealPages(t *testing.T) {
	data, err := os.ReadFile("testdata/heap-pg15.pages")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 3*BlockSize {
		t.Fatalf("%d bytes of test pages", len(data))
	}
	for blk := range uint32(3) {
		page := data[blk*BlockSize : (blk+1)*BlockSize]
		stored := StoredChecksum(page)
		if stored == 0 {
			t.Fatalf("block %d carries no checksum", blk)
		}
		if got := PageChecksum(page, blk); got != stored {
			t.Errorf("block %d: computed %d, PostgreSQL stored %d", blk, got, stored)
		}
		if got := PageChecksum(page, blk+SegmentBlocks); got == stored {
			t.Errorf("block %d checks at block %d too", blk, blk+SegmentBlocks)
		}
		// One flipped bit anywhere fails it, pd_checksum's own bits aside.
		for _, at := range []int{0, 20, 4000, BlockSize - 1} {
			bad := append([]byte(nil), page...)
			bad[at] ^= 0x10
			if PageChecksum(bad, blk) == stored {
				t.Errorf("block %d with byte %d flipped still checks", blk, at)
			}
		}
		bad := append([]byte(nil), page...)
		bad[checksumOffset] ^= 0xff
		if PageChecksum(bad, blk) != stored {
			t.Errorf("block %d: pd_checksum changed the checksum", blk)
		}
	}
}

// BenchmarkPageChecksum is the cost of checking every page of a copy.
func BenchmarkPageChecksum(b *testing.B) {
	data, err := os.ReadFile("testdata/heap-pg15.pages")
	if err != nil {
		b.Fatal(err)
	}
	page := data[:BlockSize]
	b.SetBytes(BlockSize)
	for b.Loop() {
		PageChecksum(page, 0)
	}
}
