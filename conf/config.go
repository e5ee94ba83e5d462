// Package conf holds the run's configuration and reads it from the
// command line with the same options and meanings as Barman's
// barman-cloud-backup.
package conf

import (
	"fmt"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

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
	ReadTimeout int
	// AddressingStyle is S3's --addressing-style: "auto", "virtual",
	// "path", or "" to follow the AWS profile's s3 settings.
	AddressingStyle string
	Credential      string
	Encryption      string
	EncryptionScope string
	// SSEKMSKeyID is S3's --sse-kms-key-id; KMSKeyName GCS's --kms-key-name.
	SSEKMSKeyID string
	KMSKeyName  string
	// MinChunkSize is the smallest upload part in bytes; 0 leaves it to
	// the provider. MaxBandwidth is bytes per second; 0 is no limit.
	MinChunkSize int64
	MaxBandwidth int64

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

	// Snapshot holds the snapshot options, accepted by name and refused.
	Snapshot Snapshot

	// Tags are KEY,VALUE pairs in the order given.
	Tags [][2]string

	// PageChecksums is --page-checksums: "warn", "fail" or "off".
	PageChecksums string

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

// Snapshot is what Barman 3.17 takes for snapshot backups. We do not take
// snapshot backups: the options exist so that a script passing them gets
// a clear refusal instead of "unrecognized arguments".
type Snapshot struct {
	Instance   string
	Disks      []string
	GCPProject string
	GCPZone    string
	AWSRegion  string
	// AWSAwaitTimeout is in seconds.
	AWSAwaitTimeout     int
	AWSLockMode         string
	AWSLockCoolOff      int // hours
	AWSLockExpiration   string
	AWSLockDuration     int // days
	AzureSubscriptionID string
	AzureResourceGroup  string
}

// Defaults returns the configuration before any option is read.
func Defaults() Config {
	return Config{
		CloudProvider:  "aws-s3",
		DBName:         "postgres",
		Jobs:           2,
		MaxArchiveSize: 100 << 30,
		LogFormat:      "text",
		PageChecksums:  "warn",
		Snapshot:       Snapshot{AWSAwaitTimeout: 3600},
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
var ErrSnapshotUnsupported = &UsageError{Msg: "snapshot backups (--snapshot-instance, --snapshot-disk) are not supported by this implementation"}

// MaxTags is how many tags S3 allows on an object; Barman 3.15 checks it
// for every provider.
const MaxTags = 10

// Validate applies Barman 3.17's checks that come after parsing
// (_validate_config: exit 4), and refuses options of one cloud provider
// given with another: Barman ignores them, which hides mistakes.
func (c *Config) Validate() error {
	if err := c.checkProviders(); err != nil {
		return err
	}
	if c.SSEKMSKeyID != "" && c.Encryption != "aws:kms" {
		// Barman's words (cloud_providers/__init__.py), exit 4.
		return &InputError{Msg: `Encryption type must be "aws:kms" if SSE KMS Key ID is specified`}
	}
	snapshot := len(c.Snapshot.Disks) > 0 || c.Snapshot.Instance != ""
	if snapshot && c.Compression != "" {
		return &InputError{Msg: "Compression options cannot be used with snapshot backups"}
	}
	if c.Snapshot.AWSLockMode == "governance" && c.Snapshot.AWSLockCoolOff != 0 {
		return &InputError{Msg: "'aws_snapshot_lock_mode' = 'governance' cannot be used with 'aws_snapshot_lock_cool_off_period'"}
	}
	if len(c.Tags) > MaxTags {
		return &InputError{Msg: "Maximum number of tags per object exceeded. S3 allows no more than 10 tags per object."}
	}
	seen := map[string]bool{}
	for _, kv := range c.Tags {
		if seen[kv[0]] {
			return &InputError{Msg: fmt.Sprintf("Duplicate tag keys found: %s. Tag keys must be unique.", kv[0])}
		}
		seen[kv[0]] = true
	}
	if snapshot && c.KMSKeyName != "" {
		return &InputError{Msg: "KMS key cannot be specified for snapshot backups"}
	}
	if snapshot {
		return ErrSnapshotUnsupported
	}
	return nil
}

// checkProviders refuses an option of one cloud provider given with
// another; the commands that share barman-cloud-backup's options share the
// check.
func (c *Config) checkProviders() error {
	for _, o := range []struct {
		set            bool
		flag, provider string
	}{
		{c.EndpointURL != "", "--endpoint-url", "aws-s3"},
		{c.Profile != "", "-P/--aws-profile", "aws-s3"},
		{c.Encryption != "", "-e/--encryption", "aws-s3"},
		{c.AddressingStyle != "", "--addressing-style", "aws-s3"},
		{c.Credential != "", "--azure-credential", "azure-blob-storage"},
		{c.EncryptionScope != "", "--encryption-scope", "azure-blob-storage"},
		{c.SSEKMSKeyID != "", "--sse-kms-key-id", "aws-s3"},
		{c.KMSKeyName != "", "--kms-key-name", "google-cloud-storage"},
	} {
		if o.set && c.CloudProvider != o.provider {
			return &UsageError{Msg: fmt.Sprintf("%s is an option of the %s cloud provider, not of %s", o.flag, o.provider, c.CloudProvider)}
		}
	}
	return nil
}

// LogLevel is Python's logging level for the verbosity options: WARNING
// moved by ten per -v or -q, never below DEBUG.
func (c *Config) LogLevel() int {
	return max(10, 30-10*(c.Verbose-c.Quiet))
}

// StoreOptions are the settings of the destination's store.
func (c *Config) StoreOptions() uploaders.Options {
	return uploaders.Options{
		Provider:        c.CloudProvider,
		EndpointURL:     c.EndpointURL,
		Profile:         c.Profile,
		ReadTimeout:     c.ReadTimeout,
		AddressingStyle: c.AddressingStyle,
		Encryption:      c.Encryption,
		Tags:            c.Tags,
		Jobs:            c.Jobs,
		Credential:      c.Credential,
		EncryptionScope: c.EncryptionScope,
		SSEKMSKeyID:     c.SSEKMSKeyID,
		KMSKeyName:      c.KMSKeyName,
	}
}
