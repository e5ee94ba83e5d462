package main

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

var backupIDPattern = regexp.MustCompile(`^\d{8}T\d{6}$`)

// resolve turns what the user named into a backup ID, as Barman's
// CloudBackupCatalog.parse_backup_id does: an ID as it is; latest/last
// and oldest/first the newest and oldest backup with a backup.info; else
// the backup whose backup_name it is.
func resolve(ctx context.Context, r uploaders.Reader, base, server, name string) (string, error) {
	if backupIDPattern.MatchString(name) {
		return name, nil
	}
	top, err := r.ListDir(ctx, base, "/")
	if err != nil {
		return "", err
	}
	var ids []string
	for _, p := range top.Prefixes {
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(p, base), "/"))
	}
	sort.Strings(ids)
	hasInfo := func(id string) (bool, error) {
		l, err := r.ListDir(ctx, base+id+"/backup.info", "/")
		if err != nil {
			return false, err
		}
		return len(l.Objects) > 0, nil
	}
	switch name {
	case "latest", "last", "oldest", "first":
		order := ids
		if name == "latest" || name == "last" {
			order = make([]string, len(ids))
			for i, id := range ids {
				order[len(ids)-1-i] = id
			}
		}
		for _, id := range order {
			ok, err := hasInfo(id)
			if err != nil {
				return "", err
			}
			if ok {
				return id, nil
			}
		}
		return "", noBackup("No backup of server %s to be the %s one", server, name)
	}
	var found []string
	for _, id := range ids {
		raw, err := uploaders.ReadSmall(ctx, r, base+id+"/backup.info", infoLimit)
		if errors.Is(err, uploaders.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if info, err := pg.ReadInfo(raw); err == nil && info.BackupName == name {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", noBackup("Unknown backup '%s' for server '%s'", name, server)
	case 1:
		return found[0], nil
	}
	return "", noBackup("More than one backup of server '%s' is named '%s': %s", server, name, strings.Join(found, ", "))
}
