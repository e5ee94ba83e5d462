package actors

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// ErrNotInCatalog is a backup whose objects were stored but that Barman's
// catalogue would not find as written: the run fails rather than report
// a backup nobody can restore.
var ErrNotInCatalog = fmt.Errorf("the stored backup does not read back")

// readBack lists the backup the way Barman's catalogue finds it
// (cloud.py, CloudBackupCatalog: PREFIX/SERVER/base/ listed one level
// deep for the backup folders, then the backup's folder) and compares the
// names and sizes there with what the run wrote, before backup.info
// (manifestKey) is stored. An endpoint URL that
// already names the bucket, for one, puts every key under an extra folder
// where no listing of the prefix finds it.
func readBack(ctx context.Context, store uploaders.Store, server, id string, written []StoredObject, manifestKey string) error {
	r, err := uploaders.ReaderOf(store)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Msgf("Not reading the catalogue back: %v", err)
		return nil
	}
	base := tarball.JoinKey(store.Prefix(), server, "base") + "/"
	folder := base + id + "/"
	top, err := r.ListDir(ctx, base, "/")
	if err != nil {
		return fmt.Errorf("%w: listing %s: %w", ErrNotInCatalog, base, err)
	}
	if i := sort.SearchStrings(top.Prefixes, folder); i == len(top.Prefixes) || top.Prefixes[i] != folder {
		return fmt.Errorf("%w: Barman's catalogue lists %d backup folders under %s in %s, not %s: the objects were written "+
			"somewhere else (does the endpoint URL name the bucket too?)", ErrNotInCatalog, len(top.Prefixes), base, store, id)
	}
	listing, err := r.ListDir(ctx, folder, "/")
	if err != nil {
		return fmt.Errorf("%w: listing %s: %w", ErrNotInCatalog, folder, err)
	}
	listed := map[string]int64{}
	for _, o := range listing.Objects {
		listed[o.Key] = o.Size
	}
	var problems []string
	for _, o := range written {
		size, ok := listed[o.Key]
		switch {
		case !ok:
			problems = append(problems, path.Base(o.Key)+" is not listed")
		case size != o.Size:
			problems = append(problems, fmt.Sprintf("%s is listed with %d bytes, %d were written", path.Base(o.Key), size, o.Size))
		}
		delete(listed, o.Key)
	}
	// backup.info is stored after this check: one listed now is an
	// earlier attempt's, which the new one replaces.
	delete(listed, manifestKey)
	for key := range listed {
		problems = append(problems, path.Base(key)+" is listed but was not written by this run")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: in %s: %s", ErrNotInCatalog, folder, strings.Join(problems, "; "))
	}
	zerolog.Ctx(ctx).Info().Msgf("Read back %d objects of backup '%s' as Barman's catalogue lists them", len(written), id)
	return nil
}
