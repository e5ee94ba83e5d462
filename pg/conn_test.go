package pg

import (
	"slices"
	"testing"
)

// The limits a server has are all turned off, and statement_timeout and
// lock_timeout stay off through pg_backup_stop, which waits for the WAL
// archive; idle_session_timeout exists from PostgreSQL 14 only (SET on
// 13 would fail the backup).
func TestLimitNames(t *testing.T) {
	for _, c := range []struct {
		version             int
		beforeStop, through []string
	}{
		{90600, []string{"idle_in_transaction_session_timeout"}, []string{"statement_timeout", "lock_timeout"}},
		{130023, []string{"idle_in_transaction_session_timeout"}, []string{"statement_timeout", "lock_timeout"}},
		{140000, []string{"idle_in_transaction_session_timeout", "idle_session_timeout"}, []string{"statement_timeout", "lock_timeout"}},
		{180004, []string{"idle_in_transaction_session_timeout", "idle_session_timeout"}, []string{"statement_timeout", "lock_timeout"}},
	} {
		if got := limitNames(c.version, false); !slices.Equal(got, c.beforeStop) {
			t.Errorf("version %d: reset before the stop %v, want %v", c.version, got, c.beforeStop)
		}
		if got := limitNames(c.version, true); !slices.Equal(got, c.through) {
			t.Errorf("version %d: kept off through the stop %v, want %v", c.version, got, c.through)
		}
	}
}
