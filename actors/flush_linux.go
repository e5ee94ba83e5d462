package actors

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing length bytes of f from
// offset to disk, without waiting for it, as PostgreSQL's pg_flush_data
// does (sync_file_range(2), SYNC_FILE_RANGE_WRITE): the disk then works
// while the network brings the rest, and the restore's final fsync finds
// little left to write. A hint only: its errors are the final fsync's.
func startWriteback(f *os.File, offset, length int64) {
	unix.SyncFileRange(int(f.Fd()), offset, length, unix.SYNC_FILE_RANGE_WRITE)
}
