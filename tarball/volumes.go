package tarball

import (
	"fmt"
	"strings"
)

// SplitVolumeName reads a volume's object name as Barman's restore does
// (cloud.py, CloudBackupCatalog.get_backup_files): the archive base
// ("data" or an OID), the volume number (0 for BASE.tar..., n for
// BASE_%04d.tar...), and the extension after ".tar" ("" for none). ok is
// false for a name that is no volume.
func SplitVolumeName(name string) (base string, n int, ext string, ok bool) {
	stem, rest, found := strings.Cut(name, ".tar")
	if !found || (rest != "" && !strings.HasPrefix(rest, ".")) {
		return "", 0, "", false
	}
	base = stem
	if b, num, has := strings.Cut(stem, "_"); has {
		if len(num) != 4 || strings.Trim(num, "0123456789") != "" {
			return "", 0, "", false
		}
		fmt.Sscanf(num, "%d", &n)
		if n == 0 {
			return "", 0, "", false
		}
		base = b
	}
	if base == "" {
		return "", 0, "", false
	}
	return base, n, rest, true
}
