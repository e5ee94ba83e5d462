// Package tarball holds what makes our archives Barman's archives: which
// paths go in, how members and parts are named, how headers are built and
// how the tar stream is compressed.
package tarball

import (
	"regexp"
	"strings"
)

// PGDataExcludes are anchored at the PGDATA root: logs and WAL are not part
// of a base backup, and pg_control is added last, on its own.
var PGDataExcludes = []string{
	"/pg_log/*",
	"/log/*",
	"/pg_xlog/*",
	"/pg_wal/*",
	"/global/pg_control",
}

// LiveExcludes apply to the PGDATA of a running server only, at its root
// (the member names "./NAME" of root files). A backup_label or
// tablespace_map there was left by an exclusive backup (PostgreSQL 13 and
// 14's pg_start_backup(..., exclusive => true), or an extension bringing
// it back) and is not this backup's: the backup_label of the stop
// replaces the first in the archive, but a stale tablespace_map would
// stay, and at startup PostgreSQL rebuilds pg_tblspc from it, undoing a
// restore's tablespace relocation. PostgreSQL's base backup leaves both
// out (basebackup.c, excludeFiles). A backup Barman already took keeps
// them: the backup_label in its data/ is that backup's own.
var LiveExcludes = []string{
	"/./backup_label",
	"/./tablespace_map",
}

// GlobalExcludes apply at any depth of every walked root; they mirror the
// files and directory contents PostgreSQL's own base backup leaves out.
var GlobalExcludes = []string{
	"pgsql_tmp*",
	"postgresql.auto.conf.tmp",
	"current_logfiles.tmp",
	"pg_internal.init",
	"postmaster.pid",
	"postmaster.opts",
	"recovery.conf",
	"standby.signal",
	"pg_dynshmem/*",
	"pg_notify/*",
	"pg_replslot/*",
	"pg_serial/*",
	"pg_stat_tmp/*",
	"pg_snapshots/*",
	"pg_subtrans/*",
}

type rule struct {
	dirOnly bool
	exact   *regexp.Regexp
	// deep matches the rule at any depth; nil for anchored rules.
	deep *regexp.Regexp
}

// Rules decides which member names enter an archive, with Barman's
// semantics: include rules win, then exclude rules, else the path is kept.
// A rule starting with "/" is anchored at the root, otherwise it also
// matches as "**/rule"; a trailing "/" restricts it to directories; "*"
// does not cross "/", "**" does, "?" is any one character.
type Rules struct {
	include, exclude []rule
	// emptied matches the directories named by the exclude rules
	// "DIR/*": kept, with none of their contents.
	emptied []rule
}

// NewRules compiles include and exclude patterns.
func NewRules(include, exclude []string) *Rules {
	var emptied []string
	for _, p := range exclude {
		if dir, ok := strings.CutSuffix(p, "/*"); ok && dir != "" && dir != "/" {
			emptied = append(emptied, dir+"/")
		}
	}
	return &Rules{include: compileRules(include), exclude: compileRules(exclude), emptied: compileRules(emptied)}
}

func compileRules(patterns []string) []rule {
	out := make([]rule, 0, len(patterns))
	for _, p := range patterns {
		if p == "" {
			continue
		}
		var r rule
		if strings.HasSuffix(p, "/") {
			r.dirOnly = true
			p = strings.TrimSuffix(p, "/")
		}
		anchored := strings.HasPrefix(p, "/")
		p = strings.TrimPrefix(p, "/")
		r.exact = regexp.MustCompile(wildcardToRegexp(p))
		if !anchored {
			r.deep = regexp.MustCompile(wildcardToRegexp("**/" + p))
		}
		out = append(out, r)
	}
	return out
}

func wildcardToRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(".*")
			i++
		case pattern[i] == '*':
			b.WriteString("[^/]*")
		case pattern[i] == '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return b.String()
}

func matchAny(rules []rule, name string, isDir bool) bool {
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.exact.MatchString(name) || (r.deep != nil && r.deep.MatchString(name)) {
			return true
		}
	}
	return false
}

// Allowed reports whether the member name (as MemberName builds it) goes
// into the archive.
func (r *Rules) Allowed(name string, isDir bool) bool {
	if matchAny(r.include, name, isDir) {
		return true
	}
	return !matchAny(r.exclude, name, isDir)
}

// KeepsEmpty reports whether the directory name (as DirMember builds it)
// goes into the archive with none of its contents: an exclude rule
// "DIR/*" names it. For such a directory that is a symbolic link the
// walker stores an empty directory, as PostgreSQL's base backup does for
// pg_wal and each directory of excludeDirContents (basebackup.c, sendDir
// and convert_link_to_directory): a restored cluster lacking pg_notify,
// say, does not start.
func (r *Rules) KeepsEmpty(name string) bool {
	return r.Allowed(name, true) && matchAny(r.emptied, name, true)
}
