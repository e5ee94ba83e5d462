package conf

import (
	"fmt"
	"os"
	"strings"
)

// Load builds the run's configuration: defaults, then the TOML file
// (--config or $BARMAN_CLOUD_BACKUP_CONFIG), then BARMAN_CLOUD_BACKUP_*
// environment variables, then the command line; each wins over the
// ones before it.
func Load(args []string) (Config, Action, error) {
	cfg := Defaults()
	path := configFlag(args)
	if path == "" {
		path = os.Getenv(EnvConfig)
	}
	if path != "" {
		if err := LoadFile(path, &cfg); err != nil {
			return cfg, ActionRun, err
		}
		cfg.ConfigFile = path
	}
	if err := LoadEnv(&cfg); err != nil {
		return cfg, ActionRun, err
	}
	action, err := Parse(args, &cfg)
	return cfg, action, err
}

// configFlag finds --config's value before the full parse, which needs
// the file's settings underneath it. Parse checks the flag again.
func configFlag(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		if len(name) < 4 || !strings.HasPrefix("--config", name) {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TOML renders the effective configuration as a configuration file, with
// a conninfo's password masked.
func (c *Config) TOML() string {
	values := map[string]string{
		"destination_url":        quote(c.DestinationURL),
		"server_name":            quote(c.ServerName),
		"cloud_provider":         quote(c.CloudProvider),
		"compression":            quote(compressionName(c.Compression)),
		"compression_level":      fmt.Sprint(c.CompressionLevel),
		"jobs":                   fmt.Sprint(c.Jobs),
		"max_archive_size":       fmt.Sprint(c.MaxArchiveSize),
		"immediate_checkpoint":   fmt.Sprint(c.ImmediateCheckpoint),
		"name":                   quote(c.BackupName),
		"verbose":                fmt.Sprint(c.Verbose),
		"quiet":                  fmt.Sprint(c.Quiet),
		"test":                   fmt.Sprint(c.Test),
		"log_format":             quote(c.LogFormat),
		"json_summary":           quote(c.JSONSummary),
		"prometheus_textfile":    quote(c.PrometheusTextfile),
		"postgres.host":          quote(c.Host),
		"postgres.port":          quote(c.Port),
		"postgres.user":          quote(c.User),
		"postgres.dbname":        quote(MaskPassword(c.DBName)),
		"s3.endpoint_url":        quote(c.EndpointURL),
		"s3.profile":             quote(c.Profile),
		"s3.read_timeout":        fmt.Sprint(c.ReadTimeout),
		"s3.encryption":          quote(c.Encryption),
		"azure.credential":       quote(c.Credential),
		"azure.encryption_scope": quote(c.EncryptionScope),
		"snapshot.instance":      quote(c.SnapshotInstance),
		"snapshot.disks":         quoteList(c.SnapshotDisks),
		"snapshot.zone":          quote(c.SnapshotZone),
		"snapshot.gcp_project":   quote(c.SnapshotGCPProject),
	}
	var b strings.Builder
	section := ""
	for _, k := range fileKeys {
		if k.typ == tTags {
			continue
		}
		sec, name, ok := strings.Cut(k.path, ".")
		if !ok {
			sec, name = "", k.path
		}
		if sec != section {
			section = sec
			fmt.Fprintf(&b, "\n[%s]\n", sec)
		}
		fmt.Fprintf(&b, "%s = %s\n", name, values[k.path])
	}
	b.WriteString("\n[tags]\n")
	for _, kv := range c.UniqueTags() {
		fmt.Fprintf(&b, "%s = %s\n", quote(kv[0]), quote(kv[1]))
	}
	return b.String()
}

func compressionName(c string) string {
	for name, v := range compressionNames {
		if v == c {
			return name
		}
	}
	return c
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// MaskPassword hides the password of a conninfo string or URI.
func MaskPassword(conninfo string) string {
	out := passwordKV.ReplaceAllString(conninfo, "${1}xxxxx")
	return passwordURI.ReplaceAllString(out, "${1}xxxxx@")
}
