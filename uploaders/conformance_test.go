package uploaders_test

import (
	"path/filepath"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
	"github.com/pgbackup/barman-cloud-backup/uploaders/storetest"
)

// The file store keeps the Store contract, plain and behind the retry
// decorator the commands use.
func TestFileStoreContract(t *testing.T) {
	open := func(t *testing.T) uploaders.Store {
		s, err := uploaders.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	missing := func(t *testing.T) uploaders.Store {
		s, _ := uploaders.NewFileStore(filepath.Join(t.TempDir(), "no-such-directory"))
		return s
	}
	t.Run("plain", storetest.Suite{Open: open, OpenMissing: missing}.Run)
	t.Run("retrying", storetest.Suite{Open: func(t *testing.T) uploaders.Store {
		return uploaders.WithRetry(open(t), uploaders.DefaultRetry)
	}}.Run)
}
