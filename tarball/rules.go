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
}

// NewRules compiles include and exclude patterns.
func NewRules(include, exclude []string) *Rules {
	return &Rules{include: compileRules(include), exclude: compileRules(exclude)}
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
