package tarball

import (
	"fmt"
	"strings"
)

// SplitPartName reads an archive part's object name as Barman's restore
// does (cloud.py, CloudBackupCatalog.get_backup_files): the archive base
// ("data" or an OID), the part number (0 for BASE.tar..., n for
// BASE_%04d.tar...), and the extension after ".tar" ("" for none). ok is
// false for a name that is no part.
func SplitPartName(name string) (base string, part int, ext string, ok bool) {
	stem, rest, found := strings.Cut(name, ".tar")
	if !found || (rest != "" && !strings.HasPrefix(rest, ".")) {
		return "", 0, "", false
	}
	base = stem
	if b, n, has := strings.Cut(stem, "_"); has {
		if len(n) != 4 || strings.Trim(n, "0123456789") != "" {
			return "", 0, "", false
		}
		fmt.Sscanf(n, "%d", &part)
		if part == 0 {
			return "", 0, "", false
		}
		base = b
	}
	if base == "" {
		return "", 0, "", false
	}
	return base, part, rest, true
}
