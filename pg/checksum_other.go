//go:build !amd64

package pg

// checksumRows is checksumRowsGeneric: only amd64 has a vector version.
func checksumRows(sums *[checksumLanes]uint32, rows []byte) { checksumRowsGeneric(sums, rows) }
