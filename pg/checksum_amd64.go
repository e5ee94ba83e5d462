package pg

import "golang.org/x/sys/cpu"

// checksumRows is checksumRowsGeneric, with AVX2 where the CPU has it:
// the 32 lanes are four registers of eight, each row four loads, XORs,
// multiplies, shifts and XORs, about four times the generic code's rate
// (PostgreSQL's own checksum_impl.h is written for compilers to vectorize
// it the same way).
func checksumRows(sums *[checksumLanes]uint32, rows []byte) {
	if cpu.X86.HasAVX2 && len(rows) >= rowBytes {
		checksumRowsAVX2(sums, &rows[0], len(rows)/rowBytes)
		return
	}
	checksumRowsGeneric(sums, rows)
}

// checksumRowsAVX2 feeds n rows of rowBytes bytes from rows to sums.
//
//go:noescape
func checksumRowsAVX2(sums *[checksumLanes]uint32, rows *byte, n int)
