package conf

import (
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

type kind int

const (
	flagTrue   kind = iota // store_true
	flagCount              // action=count
	flagConst              // store_const into a shared destination
	flagValue              // one value
	flagList               // nargs="*"
	flagAppend             // action=append
	flagHelp
	flagVersion
)

// option is one command-line option, described as Barman's argparse
// parser describes it so help, errors and parsing agree.
type option struct {
	short, long string
	kind        kind
	metavar     string
	help        string
	group       string
	choices     []string
	constVal    string
	exclusive   string // mutually exclusive group
	set         func(c *Config, v string) error
}

const (
	groupExt   = "Extensions (not in Barman 3.4)"
	groupMain  = "options"
	groupS3    = "Extra options for the aws-s3 cloud provider"
	groupAzure = "Extra options for the azure-blob-storage cloud provider"
	groupGCS   = "Extra options for google-cloud-storage cloud provider"
)

func (o *option) name() string {
	switch {
	case o.short != "" && o.long != "":
		return o.short + "/" + o.long
	case o.long != "":
		return o.long
	}
	return o.short
}

var options = []*option{
	{short: "-V", long: "--version", kind: flagVersion, help: "print the version and exit"},
	{long: "--help", kind: flagHelp, help: "print this help and exit"},
	{short: "-v", long: "--verbose", kind: flagCount, exclusive: "verbosity", help: "log more (repeat for more: -vv)",
		set: func(c *Config, _ string) error { c.Verbose++; return nil }},
	{short: "-q", long: "--quiet", kind: flagCount, exclusive: "verbosity", help: "log less (repeat for less: -qq)",
		set: func(c *Config, _ string) error { c.Quiet++; return nil }},
	{short: "-t", long: "--test", kind: flagTrue, help: "check that the cloud destination is reachable, then exit",
		set: func(c *Config, _ string) error { c.Test = true; return nil }},
	{long: "--cloud-provider", kind: flagValue, help: "the object storage service the destination is on",
		choices: []string{"aws-s3", "azure-blob-storage", "google-cloud-storage"},
		set:     func(c *Config, v string) error { c.CloudProvider = v; return nil }},
	{long: "--endpoint-url", kind: flagValue, metavar: "ENDPOINT_URL", group: groupS3,
		help: "S3 endpoint to use instead of AWS's, e.g. http://127.0.0.1:9000 for MinIO",
		set:  func(c *Config, v string) error { c.EndpointURL = v; return nil }},
	{short: "-P", long: "--profile", kind: flagValue, metavar: "PROFILE", group: groupS3,
		help: "AWS profile: a section of the AWS credentials and config files",
		set:  func(c *Config, v string) error { c.Profile = v; return nil }},
	{long: "--read-timeout", kind: flagValue, metavar: "READ_TIMEOUT", group: groupS3,
		help: "seconds to wait for the S3 endpoint to answer before giving up (default: 60)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("invalid int value: '%s'", v)
			}
			c.ReadTimeout = n
			return nil
		}},
	{long: "--credential", kind: flagValue, group: groupAzure, choices: []string{"azure-cli", "managed-identity"},
		help: "how to authenticate to Azure Blob Storage when no credential is in the " +
			"environment; without it the default Azure credential chain is used",
		set: func(c *Config, v string) error { c.Credential = v; return nil }},
	{short: "-z", long: "--gzip", kind: flagConst, constVal: "gz", exclusive: "compression",
		help: "compress the archives with gzip (.tar.gz)",
		set:  func(c *Config, v string) error { c.Compression = v; return nil }},
	{short: "-j", long: "--bzip2", kind: flagConst, constVal: "bz2", exclusive: "compression",
		help: "compress the archives with bzip2 (.tar.bz2)",
		set:  func(c *Config, v string) error { c.Compression = v; return nil }},
	{long: "--snappy", kind: flagConst, constVal: "snappy", exclusive: "compression",
		help: "compress the archives with snappy framing (.tar.snappy)",
		set:  func(c *Config, v string) error { c.Compression = v; return nil }},
	{short: "-h", long: "--host", kind: flagValue, metavar: "HOST",
		help: "PostgreSQL host name or Unix socket directory (default: as libpq)",
		set:  func(c *Config, v string) error { c.Host = v; return nil }},
	{short: "-p", long: "--port", kind: flagValue, metavar: "PORT",
		help: "PostgreSQL port (default: as libpq)",
		set:  func(c *Config, v string) error { c.Port = v; return nil }},
	{short: "-U", long: "--user", kind: flagValue, metavar: "USER",
		help: "PostgreSQL user (default: as libpq)",
		set:  func(c *Config, v string) error { c.User = v; return nil }},
	{long: "--immediate-checkpoint", kind: flagTrue,
		help: "ask PostgreSQL for an immediate checkpoint instead of a spread one",
		set:  func(c *Config, _ string) error { c.ImmediateCheckpoint = true; return nil }},
	{short: "-J", long: "--jobs", kind: flagValue, metavar: "JOBS",
		help: "number of parallel uploads (default: 2)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("'%s' is not a valid input", v)
			}
			if n < 1 {
				return fmt.Errorf("'%s' is not a valid positive integer", v)
			}
			c.Jobs = n
			return nil
		}},
	{short: "-S", long: "--max-archive-size", kind: flagValue, metavar: "MAX_ARCHIVE_SIZE",
		help: "start a new tar part once one is larger than this (default: 100GB)",
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			c.MaxArchiveSize = n
			return err
		}},
	{short: "-d", long: "--dbname", kind: flagValue, metavar: "DBNAME",
		help: "database name, or a whole conninfo string (default: postgres)",
		set:  func(c *Config, v string) error { c.DBName = v; return nil }},
	{short: "-n", long: "--name", kind: flagValue, metavar: "BACKUP_NAME",
		help: "a name to refer to this backup by in barman-cloud-restore, barman-cloud-backup-delete and the like",
		set: func(c *Config, v string) error {
			if err := CheckBackupName(v); err != nil {
				return err
			}
			c.BackupName = v
			return nil
		}},
	{long: "--snapshot-instance", kind: flagValue, metavar: "SNAPSHOT_INSTANCE",
		help: "instance the snapshot disks are attached to (not supported)",
		set:  func(c *Config, v string) error { c.SnapshotInstance = v; return nil }},
	{long: "--snapshot-disk", kind: flagAppend, metavar: "NAME",
		help: "a disk to snapshot; may be repeated (not supported)",
		set:  func(c *Config, v string) error { c.SnapshotDisks = append(c.SnapshotDisks, v); return nil }},
	{long: "--snapshot-zone", kind: flagValue, metavar: "SNAPSHOT_ZONE",
		help: "zone of the snapshot disks (not supported)",
		set:  func(c *Config, v string) error { c.SnapshotZone = v; return nil }},
	{long: "--snapshot-gcp-project", kind: flagValue, metavar: "SNAPSHOT_GCP_PROJECT", group: groupGCS,
		help: "GCP project to store disk snapshots in (not supported)",
		set:  func(c *Config, v string) error { c.SnapshotGCPProject = v; return nil }},
	{long: "--tags", kind: flagList, metavar: "TAGS",
		help: "KEY,VALUE tags set on every uploaded object",
		set: func(c *Config, v string) error {
			kv, err := parseTag(v)
			if err != nil {
				return err
			}
			c.Tags = append(c.Tags, kv)
			return nil
		}},
	{short: "-e", long: "--encryption", kind: flagValue, group: groupS3, choices: []string{"AES256", "aws:kms"},
		help: "S3 server-side encryption: AES256 or aws:kms",
		set:  func(c *Config, v string) error { c.Encryption = v; return nil }},
	{long: "--lz4", kind: flagConst, constVal: "lz4", exclusive: "compression", group: groupExt,
		help: "compress the archives with lz4 (.tar.lz4), as Barman 3.18 does; Barman 3.4 cannot restore them",
		set:  func(c *Config, v string) error { c.Compression = v; return nil }},
	{long: "--zstd", kind: flagConst, constVal: "zstd", exclusive: "compression", group: groupExt,
		help: "compress the archives with zstd (.tar.zst); no Barman release restores them: use tar and zstd",
		set:  func(c *Config, v string) error { c.Compression = v; return nil }},
	{long: "--compression-level", kind: flagValue, metavar: "LEVEL", group: groupExt,
		help: "compression level for gzip (1-9, default 6), bzip2 (1-9, default 9) or zstd (1-22, default 3)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > 22 {
				return fmt.Errorf("'%s' is not a level from 1 to 22 (0: the codec's default)", v)
			}
			c.CompressionLevel = n
			return nil
		}},
	{long: "--config", kind: flagValue, metavar: "FILE", group: groupExt,
		help: "read settings from this TOML file (default: $" + EnvConfig + "); flags win over it",
		set:  func(c *Config, v string) error { c.ConfigFile = v; return nil }},
	{long: "--log-format", kind: flagValue, group: groupExt, choices: []string{"text", "json"},
		help: "text (Barman's format, the default) or json (one object per line, with the backup ID, for log shippers)",
		set:  func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{long: "--json-summary", kind: flagValue, metavar: "FILE", group: groupExt,
		help: "write the run's summary (backup ID, sizes, duration, objects, status) to FILE as JSON, for monitoring",
		set:  func(c *Config, v string) error { c.JSONSummary = v; return nil }},
	{long: "--prometheus-textfile", kind: flagValue, metavar: "FILE", group: groupExt,
		help: "write the run's summary to FILE as Prometheus metrics, for node_exporter's textfile collector",
		set:  func(c *Config, v string) error { c.PrometheusTextfile = v; return nil }},
	{long: "--print-config", kind: flagTrue, group: groupExt,
		help: "print the effective settings as TOML, secrets masked, and exit",
		set:  func(c *Config, _ string) error { c.PrintConfig = true; return nil }},
	{long: "--encryption-scope", kind: flagValue, metavar: "ENCRYPTION_SCOPE", group: groupAzure,
		help: "Azure encryption scope to encrypt the uploaded blobs with",
		set:  func(c *Config, v string) error { c.EncryptionScope = v; return nil }},
}

// tagError is a --tags word that is not KEY,VALUE; Barman reports it
// without the usage text.
type tagError struct{ msg string }

func (e *tagError) Error() string { return e.msg }

func parseTag(v string) ([2]string, error) {
	r := csv.NewReader(strings.NewReader(v))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return [2]string{}, &tagError{msg: fmt.Sprintf("Error parsing tag %s: %v", v, err)}
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return [2]string{}, &tagError{msg: "Invalid tag format: " + v}
	}
	return [2]string{rows[0][0], rows[0][1]}, nil
}

var backupIDPattern = regexp.MustCompile(`^\d{8}T\d{6}$`)

// ReservedBackupIDs are the words restore and list take as backup IDs.
var ReservedBackupIDs = []string{"latest", "last", "oldest", "first", "last-failed"}

// CheckBackupName rejects names Barman's tools could not tell from an ID.
func CheckBackupName(name string) error {
	if name == "" {
		return fmt.Errorf("Backup name cannot be empty")
	}
	if backupIDPattern.MatchString(name) {
		return fmt.Errorf("Backup name '%s' is not allowed: backup ID", name)
	}
	for _, r := range ReservedBackupIDs {
		if name == r {
			return fmt.Errorf("Backup name '%s' is not allowed: reserved word", name)
		}
	}
	return nil
}

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

func looksLikeOption(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err != nil // negative numbers are values, as in argparse
}

func findLong(name string) (*option, error) {
	var matches []*option
	for _, o := range options {
		if o.long == name {
			return o, nil
		}
		if o.long != "" && strings.HasPrefix(o.long, name) {
			matches = append(matches, o)
		}
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = m.long
	}
	return nil, &UsageError{Usage: true, Msg: fmt.Sprintf("ambiguous option: %s could match %s", name, strings.Join(names, ", "))}
}

func findShort(c byte) *option {
	for _, o := range options {
		if o.short == "-"+string(c) {
			return o
		}
	}
	return nil
}

// Parse reads the command line (without the program name) over cfg.
func Parse(args []string, cfg *Config) (Action, error) {
	var positional, unknown []string
	seen := map[string]*option{}
	tagsSeen := false
	action := ActionRun
	apply := func(o *option, v string) error {
		if o.exclusive != "" {
			if prev, ok := seen[o.exclusive]; ok && prev != o {
				return &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: not allowed with argument %s", o.name(), prev.name())}
			}
			seen[o.exclusive] = o
		}
		switch o.kind {
		case flagHelp:
			action = ActionHelp
			return nil
		case flagVersion:
			action = ActionVersion
			return nil
		case flagConst:
			v = o.constVal
		}
		if len(o.choices) > 0 && !contains(o.choices, v) {
			quoted := make([]string, len(o.choices))
			for i, ch := range o.choices {
				quoted[i] = "'" + ch + "'"
			}
			return &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: invalid choice: '%s' (choose from %s)", o.name(), v, strings.Join(quoted, ", "))}
		}
		if err := o.set(cfg, v); err != nil {
			if te, ok := err.(*tagError); ok {
				return &UsageError{Msg: te.msg}
			}
			return &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: %v", o.name(), err)}
		}
		return nil
	}
	takesValue := func(o *option) bool {
		return o.kind == flagValue || o.kind == flagAppend
	}
	i := 0
	// nextValue takes an option's value from the next argument, which
	// must not look like an option itself.
	nextValue := func(o *option) (string, error) {
		if i+1 >= len(args) || looksLikeOption(args[i+1]) {
			return "", &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: expected one argument", o.name())}
		}
		i++
		return args[i], nil
	}
	for ; i < len(args); i++ {
		a := args[i]
		if action != ActionRun {
			break // argparse acts on --help and -V at once
		}
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a, "=")
			o, err := findLong(name)
			if err != nil {
				return action, err
			}
			if o == nil {
				unknown = append(unknown, a)
				continue
			}
			switch {
			case o.kind == flagList:
				if !tagsSeen {
					// --tags on the command line replaces the file's tags.
					cfg.Tags, tagsSeen = [][2]string{}, true
				}
				if hasVal {
					if err := apply(o, val); err != nil {
						return action, err
					}
					continue
				}
				for i+1 < len(args) && !looksLikeOption(args[i+1]) && args[i+1] != "--" {
					i++
					if err := apply(o, args[i]); err != nil {
						return action, err
					}
				}
			case takesValue(o):
				if !hasVal {
					if val, err = nextValue(o); err != nil {
						return action, err
					}
				}
				if err := apply(o, val); err != nil {
					return action, err
				}
			default:
				if hasVal {
					return action, &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: ignored explicit argument '%s'", o.name(), val)}
				}
				if err := apply(o, ""); err != nil {
					return action, err
				}
			}
		case looksLikeOption(a):
			for j := 1; j < len(a); j++ {
				o := findShort(a[j])
				if o == nil {
					if j == 1 {
						unknown = append(unknown, a)
					} else {
						return action, &UsageError{Usage: true, Msg: fmt.Sprintf("argument %s: ignored explicit argument '%s'", findShort(a[j-1]).name(), a[j:])}
					}
					break
				}
				if takesValue(o) {
					val := strings.TrimPrefix(a[j+1:], "=")
					if val == "" {
						var err error
						if val, err = nextValue(o); err != nil {
							return action, err
						}
					}
					if err := apply(o, val); err != nil {
						return action, err
					}
					break
				}
				if err := apply(o, ""); err != nil {
					return action, err
				}
			}
		default:
			positional = append(positional, a)
		}
	}
	if action != ActionRun {
		return action, nil
	}
	if len(positional) == 0 && cfg.DestinationURL != "" && cfg.ServerName != "" {
		// Both come from the configuration file or the environment.
		positional = []string{cfg.DestinationURL, cfg.ServerName}
	}
	if len(positional) < 2 {
		missing := []string{"destination_url", "server_name"}[len(positional):]
		return action, &UsageError{Usage: true, Msg: "the following arguments are required: " + strings.Join(missing, ", ")}
	}
	unknown = append(unknown, positional[2:]...)
	if len(unknown) > 0 {
		return action, &UsageError{Usage: true, Msg: "unrecognized arguments: " + strings.Join(unknown, " ")}
	}
	cfg.DestinationURL, cfg.ServerName = positional[0], positional[1]
	return action, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
