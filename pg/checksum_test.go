package pg

import (
	"math/rand/v2"
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

// The vector rows (amd64 with AVX2) sum as the generic ones, on random
// pages and on every row count a page can hand them.
func TestChecksumRowsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, BlockSize)
	for range 200 {
		for i := range page {
			page[i] = byte(r.Uint32())
		}
		for _, rows := range []int{0, 1, 2, 63} {
			a, b := checksumBases, checksumBases
			checksumRows(&a, page[:rows*rowBytes])
			checksumRowsGeneric(&b, page[:rows*rowBytes])
			if a != b {
				t.Fatalf("%d rows: sums differ", rows)
			}
		}
	}
}

// BenchmarkPageChecksumGeneric is the checksum without vector code, as
// on CPUs without AVX2 and on arm64.
func BenchmarkPageChecksumGeneric(b *testing.B) {
	page := make([]byte, BlockSize)
	sums := checksumBases
	b.SetBytes(BlockSize)
	for b.Loop() {
		checksumRowsGeneric(&sums, page)
	}
}
