package conf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// kind is how the command line gives an option, in argparse's terms.
type kind int

const (
	flagNone   kind = iota // not on the command line: a file key only
	flagTrue               // store_true
	flagCount              // action=count
	flagConst              // store_const into a shared destination
	flagValue              // one value
	flagList               // nargs="*"
	flagAppend             // action=append
	flagHelp
	flagVersion
)

// valueType is the type of an option's value in the TOML file.
type valueType int

const (
	tNone   valueType = iota // no file key
	tString                  // a string
	tInt                     // an integer
	tBool                    // true or false
	tSize                    // a size string ("100GB") or a number of bytes
	tList                    // a list of strings
	tTags                    // a table of KEY = "VALUE"
)

// option is one setting, declared once: its command-line spellings (one
// argparse argument of Barman's, aliases included), its key in the TOML
// file (which also names its environment variable), the key's type, its
// help, and how a value is checked, stored and read back. --help, the
// parser, the TOML loader, the environment overlay and --print-config all
// derive from the table.
type option struct {
	// flags are the spellings, short first; none for file-only keys.
	flags []string
	kind  kind
	// key is the TOML path ("jobs", "postgres.host"); "" for options only
	// the command line gives.
	key       string
	typ       valueType
	metavar   string
	help      string
	group     string
	choices   []string
	constVal  string
	exclusive string // a mutually exclusive group
	set       func(c *Config, v string) error
	// get is the value --print-config writes: string, int, int64, bool
	// or []string, by typ. Keys only.
	get func(c *Config) any
}

// Help groups, as in Barman's --help.
const (
	groupMain  = "options"
	groupS3    = "Extra options for the aws-s3 cloud provider"
	groupAzure = "Extra options for the azure-blob-storage cloud provider"
	groupGCS   = "Extra options for google-cloud-storage cloud provider"
	groupExt   = "Extensions (not in Barman)"
)

// BarmanVersion is the Barman release whose barman-cloud-backup command
// line this program implements: every option up to it, with its checks.
const BarmanVersion = "3.20.0"

// Version is this program's own version.
const Version = "0.3.0"

// name is how argparse names the option in errors: its spellings joined
// by "/".
func (o *option) name() string { return strings.Join(o.flags, "/") }

func (o *option) takesValue() bool { return o.kind == flagValue || o.kind == flagAppend }

// Setters shared by several rows.
func setString(field func(c *Config) *string) func(c *Config, v string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func setCompression(c *Config, v string) error { c.Compression = v; return nil }

// checkPositive is Barman's check_positive.
func checkPositive(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a valid input", v)
	}
	if n < 1 {
		return 0, fmt.Errorf("'%s' is not a valid positive integer", v)
	}
	return n, nil
}

// checkRange is Barman's check_aws_snapshot_lock_*_range: a non-integer
// is argparse's type error, one out of range a ValueError, which argparse
// reports with the function's name.
func checkRange(v, fn string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a valid input", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("invalid %s value: '%s'", fn, v)
	}
	return n, nil
}

var options = []*option{
	{key: "destination_url", typ: tString, help: "URL of the destination, e.g. s3://bucket/path",
		set: setString(func(c *Config) *string { return &c.DestinationURL }),
		get: func(c *Config) any { return c.DestinationURL }},
	{key: "server_name", typ: tString, help: "the name of the server as configured in Barman",
		set: setString(func(c *Config) *string { return &c.ServerName }),
		get: func(c *Config) any { return c.ServerName }},
	{flags: []string{"-V", "--version"}, kind: flagVersion, help: "print Barman's version this implements, then ours, and exit"},
	{flags: []string{"--help"}, kind: flagHelp, help: "print this help and exit"},
	{flags: []string{"-v", "--verbose"}, kind: flagCount, exclusive: "verbosity", help: "log more (repeat for more: -vv)",
		set: func(c *Config, _ string) error { c.Verbose++; return nil }},
	{flags: []string{"-q", "--quiet"}, kind: flagCount, exclusive: "verbosity", help: "log less (repeat for less: -qq)",
		set: func(c *Config, _ string) error { c.Quiet++; return nil }},
	{key: "verbose", typ: tInt, help: "like -v given this many times",
		set: func(c *Config, v string) error { return setCount(&c.Verbose, v) },
		get: func(c *Config) any { return c.Verbose }},
	{key: "quiet", typ: tInt, help: "like -q given this many times",
		set: func(c *Config, v string) error { return setCount(&c.Quiet, v) },
		get: func(c *Config) any { return c.Quiet }},
	{flags: []string{"-t", "--test"}, kind: flagTrue, key: "test", typ: tBool,
		help: "check that the cloud destination is reachable and the bucket exists, then exit",
		set:  func(c *Config, _ string) error { c.Test = true; return nil },
		get:  func(c *Config) any { return c.Test }},
	{flags: []string{"--cloud-provider"}, kind: flagValue, key: "cloud_provider", typ: tString,
		help:    "the object storage service the destination is on",
		choices: []string{"aws-s3", "azure-blob-storage", "google-cloud-storage"},
		set:     setString(func(c *Config) *string { return &c.CloudProvider }),
		get:     func(c *Config) any { return c.CloudProvider }},

	{flags: []string{"--endpoint-url"}, kind: flagValue, key: "s3.endpoint_url", typ: tString, metavar: "ENDPOINT_URL", group: groupS3,
		help: "S3 endpoint to use instead of AWS's, e.g. http://127.0.0.1:9000 for MinIO",
		set:  setString(func(c *Config) *string { return &c.EndpointURL }),
		get:  func(c *Config) any { return MaskPassword(c.EndpointURL) }},
	{flags: []string{"-P", "--aws-profile"}, kind: flagValue, key: "s3.profile", typ: tString, metavar: "AWS_PROFILE", group: groupS3,
		help: "AWS profile: a section of the AWS credentials and config files",
		set:  setString(func(c *Config) *string { return &c.Profile }),
		get:  func(c *Config) any { return c.Profile }},
	{flags: []string{"--profile"}, kind: flagValue, metavar: "AWS_PROFILE", group: groupS3,
		help: "AWS profile (deprecated: replaced by --aws-profile)",
		set:  setString(func(c *Config) *string { return &c.Profile })},
	{flags: []string{"--read-timeout"}, kind: flagValue, key: "s3.read_timeout", typ: tInt, metavar: "READ_TIMEOUT",
		help: "seconds to wait for the store to answer, or to take more of a request, before giving up (default: 60); " +
			"unlike Barman, which reads it for aws-s3 only, applied to every cloud provider",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil:
				return fmt.Errorf("invalid int value: '%s'", v)
			// Barman passes any int to botocore, where 0 or less means
			// no wait at all; a year is as good as none and keeps the
			// Duration from overflowing.
			case n < 1 || n > maxReadTimeout:
				return fmt.Errorf("'%s' is not a number of seconds from 1 to %d", v, maxReadTimeout)
			}
			c.ReadTimeout = n
			return nil
		},
		get: func(c *Config) any { return c.ReadTimeout }},
	{flags: []string{"--addressing-style"}, kind: flagValue, key: "s3.addressing_style", typ: tString, group: groupS3,
		choices: []string{"auto", "virtual", "path"},
		help: "how requests name the bucket: virtual (BUCKET.HOST, which stores such as Alibaba OSS require), path " +
			"(HOST/BUCKET) or auto (virtual on AWS, Google and Alibaba endpoints, path on others); default: the AWS profile's s3 " +
			"addressing_style, else auto (Barman 3.18)",
		set: setString(func(c *Config) *string { return &c.AddressingStyle }),
		get: func(c *Config) any { return c.AddressingStyle }},
	{flags: []string{"--azure-credential", "--credential", "--default"}, kind: flagValue, key: "azure.credential", typ: tString,
		group: groupAzure, choices: []string{"azure-cli", "managed-identity", "default"},
		help: "how to authenticate to Azure when no credential is in the environment: the Azure CLI's login, " +
			"a managed identity (AZURE_CLIENT_ID picks a user-assigned one), or Azure's default chain " +
			"(which also reads workload identity)",
		set: setString(func(c *Config) *string { return &c.Credential }),
		get: func(c *Config) any { return c.Credential }},

	codecOption("gzip"),
	codecOption("bzip2"),
	codecOption("snappy"),
	{key: "compression", typ: tString, help: strings.Join(compressionWords(), ", "),
		set: func(c *Config, v string) error {
			for _, cp := range tarball.Compressions {
				if cp.Word == v {
					c.Compression = cp.Name
					return nil
				}
			}
			return fmt.Errorf("invalid choice: '%s' (choose from %s)", v, quoteChoices(compressionWords()))
		},
		get: func(c *Config) any { return tarball.CompressionWord(c.Compression) }},
	{flags: []string{"-h", "--host"}, kind: flagValue, key: "postgres.host", typ: tString, metavar: "HOST",
		help: "PostgreSQL host name or Unix socket directory (default: as libpq)",
		set:  setString(func(c *Config) *string { return &c.Host }),
		get:  func(c *Config) any { return c.Host }},
	{flags: []string{"-p", "--port"}, kind: flagValue, key: "postgres.port", typ: tInt, metavar: "PORT",
		help: "PostgreSQL port (default: as libpq)",
		set:  setString(func(c *Config) *string { return &c.Port }),
		get:  func(c *Config) any { return c.Port }},
	{flags: []string{"-U", "--user"}, kind: flagValue, key: "postgres.user", typ: tString, metavar: "USER",
		help: "PostgreSQL user (default: as libpq)",
		set:  setString(func(c *Config) *string { return &c.User }),
		get:  func(c *Config) any { return c.User }},
	{flags: []string{"--immediate-checkpoint"}, kind: flagTrue, key: "immediate_checkpoint", typ: tBool,
		help: "ask PostgreSQL for an immediate checkpoint instead of a spread one",
		set:  func(c *Config, _ string) error { c.ImmediateCheckpoint = true; return nil },
		get:  func(c *Config) any { return c.ImmediateCheckpoint }},
	{flags: []string{"-J", "--jobs"}, kind: flagValue, key: "jobs", typ: tInt, metavar: "JOBS",
		help: "number of parallel uploads (default: 2)",
		set: func(c *Config, v string) error {
			n, err := checkPositive(v)
			if err == nil {
				c.Jobs = n
			}
			return err
		},
		get: func(c *Config) any { return c.Jobs }},
	{flags: []string{"-S", "--max-archive-size"}, kind: flagValue, key: "max_archive_size", typ: tSize, metavar: "MAX_ARCHIVE_SIZE",
		help: "start a new tar file of an archive once one is larger than this (default: 100GB)",
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			c.MaxArchiveSize = n
			return err
		},
		get: func(c *Config) any { return c.MaxArchiveSize }},
	{flags: []string{"--min-chunk-size"}, kind: flagValue, key: "min_chunk_size", typ: tSize, metavar: "MIN_CHUNK_SIZE",
		help: "smallest upload part (default: 5MB on aws-s3, 64KB on azure-blob-storage); raise it for stores " +
			"that allow fewer than 10,000 parts per object",
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			c.MinChunkSize = n
			return err
		},
		get: func(c *Config) any { return c.MinChunkSize }},
	{flags: []string{"--max-bandwidth"}, kind: flagValue, key: "max_bandwidth", typ: tSize, metavar: "MAX_BANDWIDTH",
		help: "the most bytes uploaded per second, over all upload workers together (default: no limit)",
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			c.MaxBandwidth = n
			return err
		},
		get: func(c *Config) any { return c.MaxBandwidth }},
	{flags: []string{"-d", "--dbname"}, kind: flagValue, key: "postgres.dbname", typ: tString, metavar: "DBNAME",
		help: "database name, or a whole conninfo string (default: postgres)",
		set:  setString(func(c *Config) *string { return &c.DBName }),
		get:  func(c *Config) any { return MaskPassword(c.DBName) }},
	{flags: []string{"-n", "--name"}, kind: flagValue, key: "name", typ: tString, metavar: "BACKUP_NAME",
		help: "a name to refer to this backup by in barman-cloud-restore, barman-cloud-backup-delete and the like",
		set: func(c *Config, v string) error {
			if err := CheckBackupName(v); err != nil {
				return err
			}
			c.BackupName = v
			return nil
		},
		get: func(c *Config) any { return c.BackupName }},

	{flags: []string{"--snapshot-instance"}, kind: flagValue, key: "snapshot.instance", typ: tString, metavar: "SNAPSHOT_INSTANCE",
		help: "instance the snapshot disks are attached to (snapshot backups are not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.Instance }),
		get:  func(c *Config) any { return c.Snapshot.Instance }},
	{flags: []string{"--snapshot-disk"}, kind: flagAppend, key: "snapshot.disks", typ: tList, metavar: "NAME",
		help: "a disk to snapshot; may be repeated (not supported)",
		set:  func(c *Config, v string) error { c.Snapshot.Disks = append(c.Snapshot.Disks, v); return nil },
		get:  func(c *Config) any { return c.Snapshot.Disks }},
	{flags: []string{"--snapshot-zone"}, kind: flagValue, metavar: "GCP_ZONE",
		help: "zone of the snapshot disks (deprecated: replaced by --gcp-zone)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.GCPZone })},
	{flags: []string{"--snapshot-gcp-project"}, kind: flagValue, metavar: "GCP_PROJECT", group: groupGCS,
		help: "GCP project of the disk snapshots (deprecated: replaced by --gcp-project)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.GCPProject })},
	{flags: []string{"--gcp-project"}, kind: flagValue, key: "snapshot.gcp_project", typ: tString, metavar: "GCP_PROJECT", group: groupGCS,
		help: "GCP project to store disk snapshots in (not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.GCPProject }),
		get:  func(c *Config) any { return c.Snapshot.GCPProject }},
	{flags: []string{"--kms-key-name"}, kind: flagValue, key: "gcs.kms_key_name", typ: tString, metavar: "KMS_KEY_NAME", group: groupGCS,
		help: "the Cloud KMS key to encrypt the uploaded objects with (projects/P/locations/L/keyRings/R/cryptoKeys/K)",
		set:  setString(func(c *Config) *string { return &c.KMSKeyName }),
		get:  func(c *Config) any { return c.KMSKeyName }},
	{flags: []string{"--gcp-zone"}, kind: flagValue, key: "snapshot.gcp_zone", typ: tString, metavar: "GCP_ZONE", group: groupGCS,
		help: "zone of the disks to snapshot (not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.GCPZone }),
		get:  func(c *Config) any { return c.Snapshot.GCPZone }},

	{flags: []string{"--tags"}, kind: flagList, key: "tags", typ: tTags, metavar: "TAGS", exclusive: "tags",
		help: "KEY,VALUE tags set on every uploaded object (deprecated: replaced by --tag)",
		set: func(c *Config, v string) error {
			kv, err := parseTag(v)
			if err != nil {
				return err
			}
			c.Tags = append(c.Tags, kv)
			return nil
		}},
	{flags: []string{"--tag"}, kind: flagAppend, metavar: "TAG", exclusive: "tags",
		help: "a KEY,VALUE tag set on every uploaded object; may be repeated (at most 10, keys unique)",
		set: func(c *Config, v string) error {
			kv, err := checkTag(v)
			if err != nil {
				return err
			}
			c.Tags = append(c.Tags, kv)
			return nil
		}},

	{flags: []string{"-e", "--encryption"}, kind: flagValue, key: "s3.encryption", typ: tString, group: groupS3,
		choices: []string{"AES256", "aws:kms"},
		help:    "S3 server-side encryption: AES256 or aws:kms",
		set:     setString(func(c *Config) *string { return &c.Encryption }),
		get:     func(c *Config) any { return c.Encryption }},
	{flags: []string{"--sse-kms-key-id"}, kind: flagValue, key: "s3.sse_kms_key_id", typ: tString, metavar: "SSE_KMS_KEY_ID", group: groupS3,
		help: "the AWS KMS key (ID or ARN) to encrypt the uploaded objects with; needs -e aws:kms",
		set:  setString(func(c *Config) *string { return &c.SSEKMSKeyID }),
		get:  func(c *Config) any { return c.SSEKMSKeyID }},
	{flags: []string{"--aws-region"}, kind: flagValue, key: "snapshot.aws_region", typ: tString, metavar: "AWS_REGION", group: groupS3,
		help: "AWS region of the EC2 instance and volumes to snapshot (not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.AWSRegion }),
		get:  func(c *Config) any { return c.Snapshot.AWSRegion }},
	{flags: []string{"--aws-await-snapshots-timeout"}, kind: flagValue, key: "snapshot.aws_await_snapshots_timeout", typ: tInt,
		metavar: "AWS_AWAIT_SNAPSHOTS_TIMEOUT", group: groupS3,
		help: "seconds to wait for AWS snapshots (default: 3600; not supported)",
		set: func(c *Config, v string) error {
			n, err := checkPositive(v)
			if err == nil {
				c.Snapshot.AWSAwaitTimeout = n
			}
			return err
		},
		get: func(c *Config) any { return c.Snapshot.AWSAwaitTimeout }},
	{flags: []string{"--aws-snapshot-lock-mode"}, kind: flagValue, key: "snapshot.aws_lock_mode", typ: tString, group: groupS3,
		choices: []string{"governance", "compliance"},
		help:    "lock mode of the AWS snapshots (not supported)",
		set:     setString(func(c *Config) *string { return &c.Snapshot.AWSLockMode }),
		get:     func(c *Config) any { return c.Snapshot.AWSLockMode }},
	{flags: []string{"--aws-snapshot-lock-cool-off-period"}, kind: flagValue, key: "snapshot.aws_lock_cool_off_period", typ: tInt,
		metavar: "AWS_SNAPSHOT_LOCK_COOL_OFF_PERIOD", group: groupS3,
		help: "hours, 1 to 72, before a compliance lock takes hold (not supported)",
		set: func(c *Config, v string) error {
			n, err := checkRange(v, "check_aws_snapshot_lock_cool_off_period_range", 1, 72)
			if err == nil {
				c.Snapshot.AWSLockCoolOff = n
			}
			return err
		},
		get: func(c *Config) any { return c.Snapshot.AWSLockCoolOff }},
	{flags: []string{"--aws-snapshot-lock-expiration-date"}, kind: flagValue, key: "snapshot.aws_lock_expiration_date", typ: tString,
		metavar: "AWS_SNAPSHOT_LOCK_EXPIRATION_DATE", group: groupS3, exclusive: "aws-lock-target",
		help: "when the snapshot lock ends, as YYYY-MM-DDThh:mm:ss.sssZ (not supported)",
		set: func(c *Config, v string) error {
			if !awsExpiration.MatchString(v) {
				return fmt.Errorf("Invalid date: '%s'. Expected format is '%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ'.", v)
			}
			if _, err := time.Parse("2006-01-02T15:04:05", v[:19]); err != nil {
				return fmt.Errorf("Invalid date: '%s'. Expected format is '%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ'.", v)
			}
			c.Snapshot.AWSLockExpiration = v
			return nil
		},
		get: func(c *Config) any { return c.Snapshot.AWSLockExpiration }},
	{flags: []string{"--aws-snapshot-lock-duration"}, kind: flagValue, key: "snapshot.aws_lock_duration", typ: tInt,
		metavar: "AWS_SNAPSHOT_LOCK_DURATION", group: groupS3, exclusive: "aws-lock-target",
		help: "days, 1 to 36500, the snapshot stays locked (not supported)",
		set: func(c *Config, v string) error {
			n, err := checkRange(v, "check_aws_snapshot_lock_duration_range", 1, 36500)
			if err == nil {
				c.Snapshot.AWSLockDuration = n
			}
			return err
		},
		get: func(c *Config) any { return c.Snapshot.AWSLockDuration }},

	{flags: []string{"--encryption-scope"}, kind: flagValue, key: "azure.encryption_scope", typ: tString, metavar: "ENCRYPTION_SCOPE", group: groupAzure,
		help: "Azure encryption scope to encrypt the uploaded blobs with",
		set:  setString(func(c *Config) *string { return &c.EncryptionScope }),
		get:  func(c *Config) any { return c.EncryptionScope }},
	{flags: []string{"--azure-subscription-id"}, kind: flagValue, key: "snapshot.azure_subscription_id", typ: tString,
		metavar: "AZURE_SUBSCRIPTION_ID", group: groupAzure,
		help: "Azure subscription of the instance and disks to snapshot (not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.AzureSubscriptionID }),
		get:  func(c *Config) any { return c.Snapshot.AzureSubscriptionID }},
	{flags: []string{"--azure-resource-group"}, kind: flagValue, key: "snapshot.azure_resource_group", typ: tString,
		metavar: "AZURE_RESOURCE_GROUP", group: groupAzure,
		help: "Azure resource group of the instance and disks to snapshot (not supported)",
		set:  setString(func(c *Config) *string { return &c.Snapshot.AzureResourceGroup }),
		get:  func(c *Config) any { return c.Snapshot.AzureResourceGroup }},

	codecOption("lz4"),
	codecOption("zstd"),
	{flags: []string{"--compression-level"}, kind: flagValue, key: "compression_level", typ: tInt, metavar: "LEVEL", group: groupExt,
		help: "compression level for " + tarball.LevelHelp(),
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > 22 {
				return fmt.Errorf("'%s' is not a level from 1 to 22 (0: the codec's default)", v)
			}
			c.CompressionLevel = n
			return nil
		},
		get: func(c *Config) any { return c.CompressionLevel }},
	{flags: []string{"--page-checksums"}, kind: flagValue, key: "page_checksums", typ: tString, group: groupExt,
		choices: []string{"warn", "fail", "off"},
		help: "check the data page checksums of every relation file as it is copied, when the cluster has them: " +
			"warn (the default) logs each failing file and completes the backup, fail also fails the run " +
			"(exit 1, backup.info FAILED; 63 in hook mode) once every file is read, off checks nothing",
		set: setString(func(c *Config) *string { return &c.PageChecksums }),
		get: func(c *Config) any { return c.PageChecksums }},
	{flags: []string{"--config"}, kind: flagValue, metavar: "FILE", group: groupExt,
		help: "read settings from this TOML file (default: $" + EnvConfig + "); flags win over it",
		set:  setString(func(c *Config) *string { return &c.ConfigFile })},
	{flags: []string{"--log-format"}, kind: flagValue, key: "log_format", typ: tString, group: groupExt, choices: []string{"text", "json"},
		help: "text (Barman's format, the default) or json (one object per line, with the backup ID, for log shippers)",
		set:  setString(func(c *Config) *string { return &c.LogFormat }),
		get:  func(c *Config) any { return c.LogFormat }},
	{flags: []string{"--json-summary"}, kind: flagValue, key: "json_summary", typ: tString, metavar: "FILE", group: groupExt,
		help: "write the run's summary (backup ID, sizes, duration, objects, status) to FILE as JSON, for monitoring",
		set:  setString(func(c *Config) *string { return &c.JSONSummary }),
		get:  func(c *Config) any { return c.JSONSummary }},
	{flags: []string{"--prometheus-textfile"}, kind: flagValue, key: "prometheus_textfile", typ: tString, metavar: "FILE", group: groupExt,
		help: "write the run's summary to FILE as Prometheus metrics, for node_exporter's textfile collector",
		set:  setString(func(c *Config) *string { return &c.PrometheusTextfile }),
		get:  func(c *Config) any { return c.PrometheusTextfile }},
	{flags: []string{"--print-config"}, kind: flagTrue, group: groupExt,
		help: "print the effective settings as TOML, secrets masked, and exit",
		set:  func(c *Config, _ string) error { c.PrintConfig = true; return nil }},
}

// maxReadTimeout is the longest --read-timeout, in seconds: a year.
const maxReadTimeout = 365 * 24 * 3600

// awsExpiration is the shape of Barman's "%Y-%m-%dT%H:%M:%S.%fZ".
var awsExpiration = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,6}Z$`)

func setCount(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("'%s' is not a valid count", v)
	}
	*dst = n
	return nil
}

// codecOption is the flag of the compression whose TOML word is word, from
// tarball.Compressions, where the compressions are declared: Barman 3.4's
// in the main group, later ones among the extensions.
func codecOption(word string) *option {
	for _, cp := range tarball.Compressions {
		if cp.Word != word {
			continue
		}
		o := &option{flags: cp.Flags, kind: flagConst, constVal: cp.Name, exclusive: "compression", set: setCompression,
			help: fmt.Sprintf("compress the archives with %s (.tar%s)", cp.Word, cp.Ext)}
		switch cp.Since {
		case "":
		case "ours":
			o.group = groupExt
			o.help += "; no Barman release restores them: use tar and " + cp.Word
		default:
			o.help += fmt.Sprintf(", as Barman %s does; %s", cp.Since, tarball.CannotRestore(cp.Name))
		}
		return o
	}
	panic("conf: no compression " + word) // the table names only declared ones
}

// compressionWords are the TOML file's words for the compressions.
func compressionWords() []string {
	var words []string
	for _, cp := range tarball.Compressions {
		words = append(words, cp.Word)
	}
	return words
}
