package conf

import (
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Action is what the command line asks for besides a backup.
type Action int

const (
	// ActionRun runs a backup (or -t).
	ActionRun Action = iota
	// ActionHelp prints help.
	ActionHelp
	// ActionVersion prints the version.
	ActionVersion
)

// Parse reads the command line (without the program name) over cfg with
// argparse's rules, as Barman's parser does: unique prefixes of long
// options, --opt=value, stacked short flags (-vz, -J4), nargs="*" for
// --tags, mutually exclusive groups, and --help and -V acted on at once.
func Parse(args []string, cfg *Config) (Action, error) {
	p := &parser{table: options, args: args, cfg: cfg, seen: map[string]*option{}}
	if action, err := p.scan(); err != nil || action != ActionRun {
		return action, err
	}
	return ActionRun, p.positionals()
}

// scan reads every option, and collects the positional arguments.
func (p *parser) scan() (Action, error) {
	for ; p.i < len(p.args) && p.action == ActionRun; p.i++ {
		if err := p.next(); err != nil {
			return p.action, err
		}
	}
	return p.action, nil
}

// parser is one pass over the command line.
type parser struct {
	// table is the command's options: barman-cloud-backup's, or those
	// another command shares with it.
	table  []*option
	args   []string
	i      int
	cfg    *Config
	action Action
	// seen records the option used in each mutually exclusive group.
	seen       map[string]*option
	positional []string
	unknown    []string
	// tagsFromFlags is set once a tag option replaced the file's tags.
	tagsFromFlags bool
}

// next handles args[i], and the arguments it consumes.
func (p *parser) next() error {
	a := p.args[p.i]
	switch {
	case a == "--":
		p.positional = append(p.positional, p.args[p.i+1:]...)
		p.i = len(p.args)
		return nil
	case strings.HasPrefix(a, "--") && len(a) > 2:
		return p.long(a)
	case looksLikeOption(a):
		return p.shorts(a)
	}
	p.positional = append(p.positional, a)
	return nil
}

// long handles --name, --name=value and their unique prefixes.
func (p *parser) long(a string) error {
	name, val, hasVal := strings.Cut(a, "=")
	o, err := p.findLong(name)
	if err != nil {
		return err
	}
	if o == nil {
		p.unknown = append(p.unknown, a)
		return nil
	}
	switch {
	case o.kind == flagList:
		if hasVal {
			return p.apply(o, val)
		}
		if err := p.claim(o); err != nil { // --tags alone sets no tags
			return err
		}
		for p.i+1 < len(p.args) && !looksLikeOption(p.args[p.i+1]) && p.args[p.i+1] != "--" {
			p.i++
			if err := p.apply(o, p.args[p.i]); err != nil {
				return err
			}
		}
		return nil
	case o.takesValue():
		if !hasVal {
			if val, err = p.value(o); err != nil {
				return err
			}
		}
		return p.apply(o, val)
	case hasVal:
		return usage("argument %s: ignored explicit argument '%s'", o.name(), val)
	}
	return p.apply(o, "")
}

// shorts handles -x, stacked flags (-vz) and attached values (-J4).
func (p *parser) shorts(a string) error {
	for j := 1; j < len(a); j++ {
		o := p.findShort(a[j])
		if o == nil {
			if j == 1 {
				p.unknown = append(p.unknown, a)
				return nil
			}
			return usage("argument %s: ignored explicit argument '%s'", p.findShort(a[j-1]).name(), a[j:])
		}
		if !o.takesValue() {
			if err := p.apply(o, ""); err != nil {
				return err
			}
			continue
		}
		val := strings.TrimPrefix(a[j+1:], "=")
		if val == "" {
			var err error
			if val, err = p.value(o); err != nil {
				return err
			}
		}
		return p.apply(o, val)
	}
	return nil
}

// value takes an option's value from the next argument, which must not
// look like an option itself.
func (p *parser) value(o *option) (string, error) {
	if p.i+1 >= len(p.args) || looksLikeOption(p.args[p.i+1]) {
		return "", usage("argument %s: expected one argument", o.name())
	}
	p.i++
	return p.args[p.i], nil
}

// claim checks the option's mutually exclusive group; a tag option
// replaces the tags the file or the environment gave.
func (p *parser) claim(o *option) error {
	if o.exclusive != "" {
		if prev, ok := p.seen[o.exclusive]; ok && prev != o {
			return usage("argument %s: not allowed with argument %s", o.name(), prev.name())
		}
		p.seen[o.exclusive] = o
	}
	if o.exclusive == "tags" && !p.tagsFromFlags {
		p.cfg.Tags, p.tagsFromFlags = [][2]string{}, true
	}
	return nil
}

// apply claims the option, checks the choices, then sets the value.
func (p *parser) apply(o *option, v string) error {
	if err := p.claim(o); err != nil {
		return err
	}
	switch o.kind {
	case flagHelp:
		p.action = ActionHelp
		return nil
	case flagVersion:
		p.action = ActionVersion
		return nil
	case flagConst:
		v = o.constVal
	}
	if len(o.choices) > 0 && !contains(o.choices, v) {
		return usage("argument %s: invalid choice: '%s' (choose from %s)", o.name(), v, quoteChoices(o.choices))
	}
	if err := o.set(p.cfg, v); err != nil {
		if be, ok := err.(*barmanError); ok {
			return &UsageError{Msg: be.msg}
		}
		return usage("argument %s: %v", o.name(), err)
	}
	return nil
}

// positionals checks and stores DESTINATION_URL and SERVER_NAME, which
// the file or the environment may give instead.
func (p *parser) positionals() error {
	pos := p.positional
	if len(pos) == 0 && p.cfg.DestinationURL != "" && p.cfg.ServerName != "" {
		pos = []string{p.cfg.DestinationURL, p.cfg.ServerName}
	}
	if len(pos) < 2 {
		missing := []string{"destination_url", "server_name"}[len(pos):]
		return usage("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	if unknown := append(p.unknown, pos[2:]...); len(unknown) > 0 {
		return usage("unrecognized arguments: %s", strings.Join(unknown, " "))
	}
	p.cfg.DestinationURL, p.cfg.ServerName = pos[0], pos[1]
	return nil
}

func usage(format string, args ...any) error {
	return &UsageError{Usage: true, Msg: fmt.Sprintf(format, args...)}
}

func quoteChoices(choices []string) string {
	quoted := make([]string, len(choices))
	for i, ch := range choices {
		quoted[i] = "'" + ch + "'"
	}
	return strings.Join(quoted, ", ")
}

func looksLikeOption(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err != nil // negative numbers are values, as in argparse
}

// findLong finds the option a long spelling or a unique prefix of one
// names, among every spelling of every option, as argparse does.
func (p *parser) findLong(name string) (*option, error) {
	var matches []*option
	var spellings []string
	for _, o := range p.table {
		for _, f := range o.flags {
			if f == name {
				return o, nil
			}
			if strings.HasPrefix(f, "--") && strings.HasPrefix(f, name) {
				matches = append(matches, o)
				spellings = append(spellings, f)
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return matches[0], nil
	}
	return nil, usage("ambiguous option: %s could match %s", name, strings.Join(spellings, ", "))
}

func (p *parser) findShort(c byte) *option {
	for _, o := range p.table {
		for _, f := range o.flags {
			if f == "-"+string(c) {
				return o
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// barmanError is a value Barman's own code refuses after argparse took it
// (a --tags word that is not KEY,VALUE, a --tablespace rule without ":"):
// Barman logs the message and exits 3, without the usage text.
type barmanError struct{ msg string }

func (e *barmanError) Error() string { return e.msg }

// parseTag reads a --tags word as Barman's __parse_tag does: one CSV row
// of two fields.
func parseTag(v string) ([2]string, error) {
	r := csv.NewReader(strings.NewReader(v))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return [2]string{}, &barmanError{msg: fmt.Sprintf("Error parsing tag %s: %v", v, err)}
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return [2]string{}, &barmanError{msg: "Invalid tag format: " + v}
	}
	return [2]string{rows[0][0], rows[0][1]}, nil
}

// tagChars are the characters AWS allows in tags, as Barman 3.15's
// check_tag checks them.
var tagChars = regexp.MustCompile(`^[a-zA-Z0-9\s_.:/=+\-@]*$`)

// checkTag reads a --tag value as Barman 3.15's check_tag does: split at
// the first comma, both sides trimmed, AWS's lengths and characters, no
// "aws:" prefix. It raises ValueError, which argparse reports with the
// function's name whatever the rule broken.
func checkTag(v string) ([2]string, error) {
	bad := fmt.Errorf("invalid check_tag value: '%s'", v)
	key, val, ok := strings.Cut(v, ",")
	if !ok {
		return [2]string{}, bad
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	switch {
	case len(key) < 1 || len(key) > 128, strings.HasPrefix(strings.ToLower(key), "aws:"),
		!tagChars.MatchString(key), len(val) > 256, !tagChars.MatchString(val):
		return [2]string{}, bad
	}
	return [2]string{key, val}, nil
}

var backupIDPattern = regexp.MustCompile(`^\d{8}T\d{6}$`)

// ReservedBackupIDs are the words barman-cloud-restore and its siblings
// take as backup IDs (Barman 3.13.1's RESERVED_BACKUP_IDS).
var ReservedBackupIDs = []string{"latest", "last", "oldest", "first", "last-failed", "latest-full", "last-full", "auto"}

// CheckBackupName rejects names Barman's tools could not tell from an ID
// (Barman's check_backup_name).
func CheckBackupName(name string) error {
	if name == "" {
		return fmt.Errorf("Backup name cannot be empty")
	}
	if backupIDPattern.MatchString(name) {
		return fmt.Errorf("Backup name '%s' is not allowed: backup ID", name)
	}
	if contains(ReservedBackupIDs, name) {
		return fmt.Errorf("Backup name '%s' is not allowed: reserved word", name)
	}
	return nil
}
