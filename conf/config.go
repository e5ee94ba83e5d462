// Package conf holds the run's configuration and reads it from the
// command line with the same options and meanings as Barman's
// barman-cloud-backup.
package conf

import (
	"fmt"
	"strings"
)

// Version is this program's version.
const Version = "0.1.0"

// Config is everything one run is told.
type Config struct {
	DestinationURL string
	ServerName     string

	Verbose int
	Quiet   int
	Test    bool

	CloudProvider string
	EndpointURL   string
	Profile       string
	// ReadTimeout in seconds; 0 when not given.
	ReadTimeout     int
	Credential      string
	Encryption      string
	EncryptionScope string

	// Compression is Barman's name: "", "gz", "bz2", "snappy", "lz4", or
	// ours, "zstd".
	Compression string
	// CompressionLevel is the codec's level; 0 means its default.
	CompressionLevel int

	Host                string
	Port                string
	User                string
	DBName              string
	ImmediateCheckpoint bool
	Jobs                int
	MaxArchiveSize      int64
	BackupName          string

	SnapshotInstance   string
	SnapshotDisks      []string
	SnapshotZone       string
	SnapshotGCPProject string

	// Tags are KEY,VALUE pairs in the order given.
	Tags [][2]string

	// LogFormat is "text" (Barman's) or "json".
	LogFormat string
	// JSONSummary is a file the run's summary is written to as JSON.
	JSONSummary string
	// PrometheusTextfile is a file the summary is written to as metrics
	// for node_exporter's textfile collector.
	PrometheusTextfile string

	// ConfigFile is the TOML file the settings were read from.
	ConfigFile string
	// PrintConfig asks for the effective settings instead of a backup.
	PrintConfig bool
}

// Defaults returns the configuration before any option is read.
func Defaults() Config {
	return Config{
		CloudProvider:  "aws-s3",
		DBName:         "postgres",
		Jobs:           2,
		MaxArchiveSize: 100 << 30,
		LogFormat:      "text",
	}
}

// UsageError is bad command-line input; Barman exits 3 for it. When
// Usage is set, the usage text is printed before the message, as argparse
// does.
type UsageError struct {
	Msg   string
	Usage bool
}

func (e *UsageError) Error() string { return e.Msg }

// InputError is an option combination Barman rejects after parsing; it
// exits 4 for those (its ConfigurationException).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// ErrSnapshotUnsupported is returned for snapshot backups, which we do not
// take.
var ErrSnapshotUnsupported = &UsageError{Msg: "snapshot backups (--snapshot-*) are not supported by this implementation"}

// Validate applies Barman's checks that come after parsing, and refuses
// options of one cloud provider given with another: Barman ignores them,
// which hides mistakes.
func (c *Config) Validate() error {
	for _, o := range []struct {
		set            bool
		flag, provider string
	}{
		{c.EndpointURL != "", "--endpoint-url", "aws-s3"},
		{c.Profile != "", "-P/--profile", "aws-s3"},
		{c.ReadTimeout != 0, "--read-timeout", "aws-s3"},
		{c.Encryption != "", "-e/--encryption", "aws-s3"},
		{c.Credential != "", "--credential", "azure-blob-storage"},
		{c.EncryptionScope != "", "--encryption-scope", "azure-blob-storage"},
	} {
		if o.set && c.CloudProvider != o.provider {
			return &UsageError{Msg: fmt.Sprintf("%s is an option of the %s cloud provider, not of %s", o.flag, o.provider, c.CloudProvider)}
		}
	}
	snap := map[string]bool{
		"snapshot_disks":    len(c.SnapshotDisks) > 0,
		"snapshot_instance": c.SnapshotInstance != "",
		"snapshot_zone":     c.SnapshotZone != "",
	}
	any := false
	var missing []string
	for _, k := range []string{"snapshot_disks", "snapshot_instance", "snapshot_zone"} {
		if snap[k] {
			any = true
		} else {
			missing = append(missing, k)
		}
	}
	if any {
		if len(missing) > 0 {
			return &InputError{Msg: "Incomplete options for snapshot backup - missing: " + strings.Join(missing, ", ")}
		}
		if c.Compression != "" {
			return &InputError{Msg: "Compression options cannot be used with snapshot backups"}
		}
		return ErrSnapshotUnsupported
	}
	return nil
}

// LogLevel is Python's logging level for the verbosity options: WARNING
// moved by ten per -v or -q, never below DEBUG.
func (c *Config) LogLevel() int {
	return max(10, 30-10*(c.Verbose-c.Quiet))
}

// UniqueTags returns the tags with each key once, as Barman's dict of
// them: a later value wins, the first position stays.
func (c *Config) UniqueTags() [][2]string {
	var out [][2]string
	at := map[string]int{}
	for _, kv := range c.Tags {
		if i, ok := at[kv[0]]; ok {
			out[i][1] = kv[1]
			continue
		}
		at[kv[0]] = len(out)
		out = append(out, kv)
	}
	return out
}
