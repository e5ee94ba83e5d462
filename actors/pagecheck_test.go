package actors

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// A relation file of three real pages, the second damaged: the copy
// counts it and stores the file as it is on disk; under FailPages the
// run fails naming it, and backup.info says FAILED; a cluster without
// checksums, or SkipPages, checks nothing; an unlogged relation's main
// fork is not judged, its init fork is; not knowing whether the cluster
// has checksums checks nothing, and fails the run under FailPages. The
// fixture's other files, random bytes, have LSNs past the start and are
// not judged.
func TestRunChecksPages(t *testing.T) {
	pages, err := os.ReadFile("../pg/testdata/heap-pg15.pages")
	if err != nil {
		t.Fatal(err)
	}
	pages[8192+5000] ^= 1
	unreadable := errors.New("pg_control: its CRC does not match its content: damaged")
	for _, c := range []struct {
		name      string
		checksums bool
		unknown   error
		unlogged  bool
		policy    PagePolicy
		state     PageState
		checked   int64
		failed    int64
	}{
		{"warn", true, nil, false, WarnPages, PagesChecked, 3, 1},
		{"fail", true, nil, false, FailPages, PagesChecked, 3, 1},
		{"skip", true, nil, false, SkipPages, PagesSkipped, 0, 0},
		{"no-checksums", false, nil, false, WarnPages, PagesNoChecksums, 0, 0},
		{"unlogged", true, nil, true, FailPages, PagesChecked, 1, 0},
		{"unknown", true, unreadable, false, WarnPages, PagesUndetermined, 0, 0},
		{"unknown-fail", true, unreadable, false, FailPages, PagesUndetermined, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := fixture(t)
			src.checksums, src.checksumsUnknown = c.checksums, c.unknown
			damaged := filepath.Join(src.pgdata, "base", "5", "16600")
			if err := os.WriteFile(damaged, pages, 0o600); err != nil {
				t.Fatal(err)
			}
			if c.unlogged {
				// Block 0 of the heap: sound at block 0 of the init fork.
				if err := os.WriteFile(damaged+"_init", pages[:8192], 0o600); err != nil {
					t.Fatal(err)
				}
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
			if c.name == "unknown-fail" {
				if err == nil || !strings.Contains(err.Error(), "--page-checksums fail: cannot tell whether the cluster has data checksums: pg_control") ||
					!bytes.Contains(info, []byte("status=FAILED\n")) {
					t.Fatalf("not knowing under FailPages: %v\n%s", err, info)
				}
				return
			}
			var pce *PageChecksumError
			if c.policy == FailPages && c.failed > 0 {
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
