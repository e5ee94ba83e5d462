package actors

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// A relation file of three real pages, the second damaged: the copy
// counts it and stores the file as it is on disk; under FailPages the
// run fails naming it, and backup.info says FAILED; a cluster without
// checksums, or SkipPages, checks nothing. The fixture's other files,
// random bytes, have LSNs past the start and are not judged.
func TestRunChecksPages(t *testing.T) {
	pages, err := os.ReadFile("../pg/testdata/heap-pg15.pages")
	if err != nil {
		t.Fatal(err)
	}
	pages[8192+5000] ^= 1
	for _, c := range []struct {
		name      string
		checksums bool
		policy    PagePolicy
		state     PageState
		checked   int64
		failed    int64
	}{
		{"warn", true, WarnPages, PagesChecked, 3, 1},
		{"fail", true, FailPages, PagesChecked, 3, 1},
		{"skip", true, SkipPages, PagesSkipped, 0, 0},
		{"no-checksums", false, WarnPages, PagesNoChecksums, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := fixture(t)
			src.checksums = c.checksums
			damaged := filepath.Join(src.pgdata, "base", "5", "16600")
			if err := os.WriteFile(damaged, pages, 0o600); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			store, _ := uploaders.NewFileStore(root)
			codec, _ := tarball.CodecByName("", 0)
			progress := &Progress{}
			_, err := Run(context.Background(), src, Options{Store: store, ServerName: "main", BackupID: "20261124T120000",
				Codec: codec, MaxArchiveSize: 1 << 30, Progress: progress, Pages: c.policy})
			tally := &progress.Pages
			if tally.State() != c.state || tally.Checked.Load() != c.checked || tally.FailedPages.Load() != c.failed ||
				tally.FailedFiles.Load() != c.failed {
				t.Errorf("state %d, %d pages checked, %d failed in %d files; want %d, %d, %d", tally.State(),
					tally.Checked.Load(), tally.FailedPages.Load(), tally.FailedFiles.Load(), c.state, c.checked, c.failed)
			}
			info, _ := os.ReadFile(filepath.Join(root, "main/base/20261124T120000/backup.info"))
			var pce *PageChecksumError
			if c.policy == FailPages {
				if !errors.As(err, &pce) || pce.File != damaged || pce.Block != 1 || pce.Pages != 1 || !src.aborted {
					t.Fatalf("want a PageChecksumError for %s block 1 and backup mode ended, got %v (aborted %v)", damaged, err, src.aborted)
				}
				if !bytes.Contains(info, []byte("status=FAILED\n")) || !bytes.Contains(info, []byte(damaged)) {
					t.Errorf("backup.info:\n%s", info)
				}
				return
			}
			if err != nil || !bytes.Contains(info, []byte("status=DONE\n")) {
				t.Fatalf("run: %v\n%s", err, info)
			}
			// The copy is faithful: the damaged file is stored whole.
			members := readArchive(t, root, []string{"main/base/20261124T120000/data.tar"}, "data", "")
			if members["base/5/16600"] != int64(len(pages)) {
				t.Errorf("base/5/16600 stored with %d bytes", members["base/5/16600"])
			}
		})
	}
}
