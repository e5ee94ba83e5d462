package conf

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// testdata/sizes.json holds Barman 3.4's check_size() results (null for
// rejected input).
func TestParseSizeMatchesBarman(t *testing.T) {
	raw, err := os.ReadFile("testdata/sizes.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]*int64
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for in, w := range want {
		got, err := ParseSize(in)
		switch {
		case w == nil && err == nil:
			t.Errorf("ParseSize(%q) = %d, Barman rejects it", in, got)
		case w != nil && (err != nil || got != *w):
			t.Errorf("ParseSize(%q) = %d, %v; Barman says %d", in, got, err, *w)
		}
	}
}

func parse(t *testing.T, args ...string) Config {
	t.Helper()
	cfg := Defaults()
	action, err := Parse(args, &cfg)
	if err != nil || action != ActionRun {
		t.Fatalf("Parse(%q) = %v, %v", args, action, err)
	}
	return cfg
}

func TestParseForms(t *testing.T) {
	cfg := parse(t, "s3://b/p", "srv")
	want := Defaults()
	want.DestinationURL, want.ServerName = "s3://b/p", "srv"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults: got %+v", cfg)
	}
	for _, c := range []struct {
		args  []string
		check func(Config) bool
	}{
		{[]string{"-vv", "s3://b/p", "srv"}, func(c Config) bool { return c.Verbose == 2 }},
		{[]string{"-v", "-v", "-v", "s3://b/p", "srv"}, func(c Config) bool { return c.LogLevel() == 10 }},
		{[]string{"-qq", "s3://b/p", "srv"}, func(c Config) bool { return c.Quiet == 2 && c.LogLevel() == 50 }},
		{[]string{"-z", "s3://b/p", "srv"}, func(c Config) bool { return c.Compression == "gz" }},
		{[]string{"--bzip2", "s3://b/p", "srv"}, func(c Config) bool { return c.Compression == "bz2" }},
		{[]string{"--snapp", "s3://b/p", "srv"}, func(c Config) bool { return c.Compression == "snappy" }},
		{[]string{"-z", "-z", "s3://b/p", "srv"}, func(c Config) bool { return c.Compression == "gz" }},
		{[]string{"-h", "db1", "-p", "5433", "-U", "bk", "s3://b/p", "srv"}, func(c Config) bool {
			return c.Host == "db1" && c.Port == "5433" && c.User == "bk"
		}},
		{[]string{"--host=db1", "--port=5433", "s3://b/p", "srv"}, func(c Config) bool { return c.Host == "db1" && c.Port == "5433" }},
		{[]string{"-J4", "s3://b/p", "srv"}, func(c Config) bool { return c.Jobs == 4 }},
		{[]string{"--jobs", "3", "s3://b/p", "srv"}, func(c Config) bool { return c.Jobs == 3 }},
		{[]string{"--jo=5", "s3://b/p", "srv"}, func(c Config) bool { return c.Jobs == 5 }},
		{[]string{"-S", "1GiB", "s3://b/p", "srv"}, func(c Config) bool { return c.MaxArchiveSize == 1000000000 }},
		{[]string{"-S=500MB", "s3://b/p", "srv"}, func(c Config) bool { return c.MaxArchiveSize == 500<<20 }},
		{[]string{"--max-archive-size", "123", "s3://b/p", "srv"}, func(c Config) bool { return c.MaxArchiveSize == 123 }},
		{[]string{"-d", "host=x dbname=y", "s3://b/p", "srv"}, func(c Config) bool { return c.DBName == "host=x dbname=y" }},
		{[]string{"-n", "nightly", "s3://b/p", "srv"}, func(c Config) bool { return c.BackupName == "nightly" }},
		{[]string{"--tags", "a,1", "b,\"x,y\"", "--", "s3://b/p", "srv"}, func(c Config) bool {
			return reflect.DeepEqual(c.Tags, [][2]string{{"a", "1"}, {"b", "x,y"}})
		}},
		{[]string{"s3://b/p", "srv", "--tags", "a,1", "b,2"}, func(c Config) bool { return len(c.Tags) == 2 }},
		{[]string{"--tags=k,v", "s3://b/p", "srv"}, func(c Config) bool { return len(c.Tags) == 1 && c.Tags[0] == [2]string{"k", "v"} }},
		{[]string{"--tag", "team, dba ", "--tag=note,a b", "s3://b/p", "srv"}, func(c Config) bool {
			return reflect.DeepEqual(c.Tags, [][2]string{{"team", "dba"}, {"note", "a b"}})
		}},
		{[]string{"--aws-profile", "prod", "s3://b/p", "srv"}, func(c Config) bool { return c.Profile == "prod" }},
		{[]string{"--profile", "old", "s3://b/p", "srv"}, func(c Config) bool { return c.Profile == "old" }},
		{[]string{"--azure-credential", "default", "s3://b/p", "srv"}, func(c Config) bool { return c.Credential == "default" }},
		{[]string{"--default", "managed-identity", "s3://b/p", "srv"}, func(c Config) bool { return c.Credential == "managed-identity" }},
		{[]string{"--snapshot-zone", "z", "--snapshot-gcp-project", "p", "s3://b/p", "srv"}, func(c Config) bool {
			return c.Snapshot.GCPZone == "z" && c.Snapshot.GCPProject == "p"
		}},
		{[]string{"--gcp-zone", "z", "--gcp-project", "p", "--aws-region", "r", "--aws-await-snapshots-timeout", "60",
			"--aws-snapshot-lock-mode", "compliance", "--aws-snapshot-lock-cool-off-period", "72",
			"--aws-snapshot-lock-expiration-date", "2030-01-02T03:04:05.678Z", "--azure-subscription-id", "s",
			"--azure-resource-group", "g", "s3://b/p", "srv"}, func(c Config) bool {
			return reflect.DeepEqual(c.Snapshot, Snapshot{GCPZone: "z", GCPProject: "p", AWSRegion: "r", AWSAwaitTimeout: 60,
				AWSLockMode: "compliance", AWSLockCoolOff: 72, AWSLockExpiration: "2030-01-02T03:04:05.678Z",
				AzureSubscriptionID: "s", AzureResourceGroup: "g"})
		}},
		{[]string{"--tags", "-z", "s3://b/p", "srv"}, func(c Config) bool { return c.Tags != nil && len(c.Tags) == 0 && c.Compression == "gz" }},
		{[]string{"-e", "aws:kms", "-P", "prod", "--read-timeout", "30", "--endpoint-url", "http://127.0.0.1:9000", "s3://b/p", "srv"}, func(c Config) bool {
			return c.Encryption == "aws:kms" && c.Profile == "prod" && c.ReadTimeout == 30 && c.EndpointURL == "http://127.0.0.1:9000"
		}},
		{[]string{"--cloud-provider", "azure-blob-storage", "--credential", "azure-cli", "--encryption-scope", "sc", "https://a.blob.core.windows.net/c", "srv"}, func(c Config) bool {
			return c.CloudProvider == "azure-blob-storage" && c.Credential == "azure-cli" && c.EncryptionScope == "sc"
		}},
		{[]string{"-t", "--immediate-checkpoint", "s3://b/p", "srv"}, func(c Config) bool { return c.Test && c.ImmediateCheckpoint }},
		{[]string{"s3://b/p", "srv"}, func(c Config) bool { return c.PageChecksums == "warn" }},
		{[]string{"--page-checksums", "fail", "s3://b/p", "srv"}, func(c Config) bool { return c.PageChecksums == "fail" }},
		{[]string{"-tvz", "s3://b/p", "srv"}, func(c Config) bool { return c.Test && c.Verbose == 1 && c.Compression == "gz" }},
		{[]string{"--snapshot-disk", "d1", "--snapshot-disk", "d2", "s3://b/p", "srv"}, func(c Config) bool { return len(c.Snapshot.Disks) == 2 }},
	} {
		if cfg := parse(t, c.args...); !c.check(cfg) {
			t.Errorf("Parse(%q) gave %+v", c.args, cfg)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "the following arguments are required: destination_url, server_name"},
		{[]string{"s3://b/p"}, "the following arguments are required: server_name"},
		{[]string{"s3://b/p", "srv", "extra"}, "unrecognized arguments: extra"},
		{[]string{"--bogus", "s3://b/p", "srv"}, "unrecognized arguments: --bogus"},
		{[]string{"-z", "-j", "s3://b/p", "srv"}, "argument -j/--bzip2: not allowed with argument -z/--gzip"},
		{[]string{"--snappy", "-z", "s3://b/p", "srv"}, "argument -z/--gzip: not allowed with argument --snappy"},
		{[]string{"-v", "-q", "s3://b/p", "srv"}, "argument -q/--quiet: not allowed with argument -v/--verbose"},
		{[]string{"-J", "0", "s3://b/p", "srv"}, "argument -J/--jobs: '0' is not a valid positive integer"},
		{[]string{"-J", "two", "s3://b/p", "srv"}, "argument -J/--jobs: 'two' is not a valid input"},
		{[]string{"-S", "10XB", "s3://b/p", "srv"}, "argument -S/--max-archive-size: '10XB' is not a valid size string"},
		{[]string{"-S", "0", "s3://b/p", "srv"}, "is not a valid size string"},
		{[]string{"--read-timeout", "soon", "s3://b/p", "srv"}, "argument --read-timeout: invalid int value: 'soon'"},
		{[]string{"--addressing-style", "dns", "s3://b/p", "srv"}, "argument --addressing-style: invalid choice: 'dns' (choose from 'auto', 'virtual', 'path')"},
		{[]string{"--read-timeout", "0", "s3://b/p", "srv"}, "argument --read-timeout: '0' is not a number of seconds from 1 to 31536000"},
		{[]string{"--read-timeout", "9999999999", "s3://b/p", "srv"}, "argument --read-timeout: '9999999999' is not a number of seconds from 1 to 31536000"},
		{[]string{"-n", "latest", "s3://b/p", "srv"}, "argument -n/--name: Backup name 'latest' is not allowed: reserved word"},
		{[]string{"-n", "20261124T140715", "s3://b/p", "srv"}, "is not allowed: backup ID"},
		{[]string{"--cloud-provider", "ftp", "s3://b/p", "srv"}, "invalid choice: 'ftp'"},
		{[]string{"--page-checksums", "strict", "s3://b/p", "srv"}, "argument --page-checksums: invalid choice: 'strict' (choose from 'warn', 'fail', 'off')"},
		{[]string{"-e", "DES", "s3://b/p", "srv"}, "argument -e/--encryption: invalid choice: 'DES'"},
		{[]string{"--tags", "a,b,c", "s3://b/p", "srv"}, "Invalid tag format: a,b,c"},
		{[]string{"--tags", "justakey", "s3://b/p", "srv"}, "Invalid tag format: justakey"},
		{[]string{"-J", "s3://b/p", "srv"}, "argument -J/--jobs: 's3://b/p' is not a valid input"},
		{[]string{"--snap", "s3://b/p", "srv"}, "ambiguous option: --snap could match --snappy, --snapshot-instance"},
		{[]string{"-h", "-z", "s3://b/p", "srv"}, "argument -h/--host: expected one argument"},
		{[]string{"--en", "x", "s3://b/p", "srv"}, "ambiguous option: --en could match --endpoint-url, --encryption, --encryption-scope"},
		{[]string{"--test=yes", "s3://b/p", "srv"}, "ignored explicit argument 'yes'"},
		// Barman 3.5 to 3.17.
		{[]string{"-n", "auto", "s3://b/p", "srv"}, "Backup name 'auto' is not allowed: reserved word"},
		{[]string{"-n", "latest-full", "s3://b/p", "srv"}, "reserved word"},
		{[]string{"--tag", "a,1", "--tags", "b,2", "s3://b/p", "srv"}, "argument --tags: not allowed with argument --tag"},
		{[]string{"--tag", "novalue", "s3://b/p", "srv"}, "argument --tag: invalid check_tag value: 'novalue'"},
		{[]string{"--tag", "aws:x,1", "s3://b/p", "srv"}, "invalid check_tag value"},
		{[]string{"--tag", "k,v!", "s3://b/p", "srv"}, "invalid check_tag value"},
		{[]string{"--tag", ",v", "s3://b/p", "srv"}, "invalid check_tag value"},
		{[]string{"--tag", "k,a,b", "s3://b/p", "srv"}, "invalid check_tag value: 'k,a,b'"},
		{[]string{"--azure-credential", "password", "s3://b/p", "srv"}, "argument --azure-credential/--credential/--default: invalid choice: 'password'"},
		{[]string{"--aws-snapshot-lock-mode", "loose", "s3://b/p", "srv"}, "invalid choice: 'loose'"},
		{[]string{"--aws-snapshot-lock-cool-off-period", "73", "s3://b/p", "srv"}, "invalid check_aws_snapshot_lock_cool_off_period_range value: '73'"},
		{[]string{"--aws-snapshot-lock-duration", "x", "s3://b/p", "srv"}, "'x' is not a valid input"},
		{[]string{"--aws-snapshot-lock-duration", "1", "--aws-snapshot-lock-expiration-date", "2030-01-02T03:04:05.000Z", "s3://b/p", "srv"}, "not allowed with argument --aws-snapshot-lock-duration"},
		{[]string{"--aws-snapshot-lock-expiration-date", "2030-01-02", "s3://b/p", "srv"}, "Invalid date: '2030-01-02'. Expected format is '%Y-%m-%dT%H:%M:%S.%fZ'."},
		{[]string{"--aws-await-snapshots-timeout", "0", "s3://b/p", "srv"}, "'0' is not a valid positive integer"},
		{[]string{"--d", "x", "s3://b/p", "srv"}, "ambiguous option: --d could match --default, --dbname"},
	} {
		cfg := Defaults()
		_, err := Parse(c.args, &cfg)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q) = %v, want a usage error", c.args, err)
			continue
		}
		if !strings.Contains(ue.Msg, c.msg) {
			t.Errorf("Parse(%q) said %q, want %q", c.args, ue.Msg, c.msg)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	cfg := Defaults()
	if a, err := Parse([]string{"--help"}, &cfg); a != ActionHelp || err != nil {
		t.Errorf("--help: %v %v", a, err)
	}
	if a, err := Parse([]string{"-V", "--bogus"}, &cfg); a != ActionVersion || err != nil {
		t.Errorf("-V: %v %v", a, err)
	}
	help := Help()
	// Every option of Barman 3.4's barman-cloud-backup --help.
	for _, opt := range []string{"-V, --version", "--help", "-v, --verbose", "-q, --quiet", "-t, --test",
		"--cloud-provider {aws-s3,azure-blob-storage,google-cloud-storage}", "-z, --gzip", "-j, --bzip2", "--snappy",
		"-h HOST, --host HOST", "-p PORT, --port PORT", "-U USER, --user USER", "--immediate-checkpoint",
		"-J JOBS, --jobs JOBS", "-S MAX_ARCHIVE_SIZE, --max-archive-size MAX_ARCHIVE_SIZE", "-d DBNAME, --dbname DBNAME",
		"-n BACKUP_NAME, --name BACKUP_NAME", "--snapshot-instance SNAPSHOT_INSTANCE", "--snapshot-disk NAME",
		"--snapshot-zone GCP_ZONE", "--snapshot-gcp-project GCP_PROJECT", "--tags [TAGS ...]",
		"--endpoint-url ENDPOINT_URL", "--read-timeout READ_TIMEOUT",
		"-e {AES256,aws:kms}, --encryption {AES256,aws:kms}",
		"--encryption-scope ENCRYPTION_SCOPE", "destination_url", "server_name",
		// What Barman 3.5 to 3.17 added or renamed.
		"-P AWS_PROFILE, --aws-profile AWS_PROFILE", "--profile AWS_PROFILE", "--tag TAG",
		"--azure-credential {azure-cli,managed-identity,default}, --credential {azure-cli,managed-identity,default}",
		"--gcp-project GCP_PROJECT", "--gcp-zone GCP_ZONE", "--aws-region AWS_REGION",
		"--aws-await-snapshots-timeout AWS_AWAIT_SNAPSHOTS_TIMEOUT", "--aws-snapshot-lock-mode {governance,compliance}",
		"--aws-snapshot-lock-cool-off-period AWS_SNAPSHOT_LOCK_COOL_OFF_PERIOD",
		"--aws-snapshot-lock-expiration-date AWS_SNAPSHOT_LOCK_EXPIRATION_DATE",
		"--aws-snapshot-lock-duration AWS_SNAPSHOT_LOCK_DURATION",
		"--azure-subscription-id AZURE_SUBSCRIPTION_ID", "--azure-resource-group AZURE_RESOURCE_GROUP"} {
		if !strings.Contains(help, opt) {
			t.Errorf("--help lacks %q", opt)
		}
	}
	if !strings.HasPrefix(Usage(), "usage: barman-cloud-backup [-V] [--help] [-v | -q]") {
		t.Errorf("usage line: %s", Usage())
	}
}

func TestValidateProviderOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--cloud-provider", "azure-blob-storage", "--endpoint-url", "http://127.0.0.1:9000", "https://a.blob.core.windows.net/c", "srv"},
		{"--cloud-provider", "google-cloud-storage", "-e", "AES256", "gs://b/p", "srv"},
		{"--credential", "azure-cli", "s3://b/p", "srv"},
		{"--encryption-scope", "scope", "s3://b/p", "srv"},
		{"--cloud-provider", "azure-blob-storage", "--addressing-style", "path", "https://a.blob.core.windows.net/c", "srv"},
		{"-P", "prod", "--cloud-provider", "azure-blob-storage", "https://a.blob.core.windows.net/c", "srv"},
	} {
		cfg := parse(t, args...)
		var ue *UsageError
		if err := cfg.Validate(); !errors.As(err, &ue) || !strings.Contains(ue.Msg, "is an option of the") {
			t.Errorf("%q: %v", args, err)
		}
	}
	// --read-timeout is in Barman's aws-s3 group, but Barman ignores it
	// elsewhere, silently; ours applies it to every provider.
	for _, args := range [][]string{
		{"--cloud-provider", "google-cloud-storage", "--read-timeout", "5", "gs://b/p", "srv"},
		{"--cloud-provider", "azure-blob-storage", "--read-timeout", "5", "https://a.blob.core.windows.net/c", "srv"},
	} {
		if cfg := parse(t, args...); cfg.Validate() != nil || cfg.StoreOptions().ReadTimeout != 5 {
			t.Errorf("%q: %v, read timeout %d", args, cfg.Validate(), cfg.StoreOptions().ReadTimeout)
		}
	}
	if cfg := parse(t, "--addressing-style", "virtual", "s3://b/p", "srv"); cfg.Validate() != nil || cfg.StoreOptions().AddressingStyle != "virtual" {
		t.Errorf("--addressing-style virtual: %v, %q", cfg.Validate(), cfg.StoreOptions().AddressingStyle)
	}
	ok := parse(t, "--cloud-provider", "azure-blob-storage", "--credential", "azure-cli", "--encryption-scope", "s", "https://a.blob.core.windows.net/c", "srv")
	if err := ok.Validate(); err != nil {
		t.Errorf("azure options with azure: %v", err)
	}
}

// Barman 3.17's _validate_config: its errors exit 4; snapshot backups,
// accepted by name, are then refused.
func TestValidateBarman317(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--snapshot-instance", "i", "-z"}, "Compression options cannot be used with snapshot backups"},
		{[]string{"--snapshot-disk", "d", "--snappy"}, "Compression options cannot be used with snapshot backups"},
		{[]string{"--aws-snapshot-lock-mode", "governance", "--aws-snapshot-lock-cool-off-period", "2"},
			"'aws_snapshot_lock_mode' = 'governance' cannot be used with 'aws_snapshot_lock_cool_off_period'"},
		{[]string{"--tags", "a,1", "b,2", "c,3", "d,4", "e,5", "f,6", "g,7", "h,8", "i,9", "j,10", "k,11", "--"},
			"Maximum number of tags per object exceeded. S3 allows no more than 10 tags per object."},
		{[]string{"--tags", "b,1", "a,2", "b,3", "--"}, "Duplicate tag keys found: b. Tag keys must be unique."},
		{[]string{"--tag", "b,1", "--tag", "b,1"}, "Duplicate tag keys found: b."},
	} {
		cfg := parse(t, append(c.args, "s3://b/p", "srv")...)
		var ie *InputError
		if err := cfg.Validate(); !errors.As(err, &ie) || !strings.Contains(ie.Msg, c.msg) {
			t.Errorf("%q: %v, want %q (exit 4)", c.args, err, c.msg)
		}
	}
	for _, args := range [][]string{
		{"--snapshot-instance", "i"},
		{"--snapshot-instance", "i", "--snapshot-disk", "d", "--gcp-zone", "z", "--gcp-project", "p"},
		{"--snapshot-disk", "d", "--cloud-provider", "azure-blob-storage", "--azure-subscription-id", "s"},
	} {
		cfg := parse(t, append(args, "s3://b/p", "srv")...)
		if err := cfg.Validate(); err != ErrSnapshotUnsupported {
			t.Errorf("%q: %v, want the snapshot refusal", args, err)
		}
	}
	ten := []string{}
	for i := range 10 {
		ten = append(ten, "--tag", fmt.Sprintf("k%d,v", i))
	}
	cfg := parse(t, append(ten, "s3://b/p", "srv")...)
	if err := cfg.Validate(); err != nil {
		t.Errorf("ten tags: %v", err)
	}
	cfg = parse(t, "s3://b/p", "srv")
	if err := cfg.Validate(); err != nil {
		t.Errorf("plain backup: %v", err)
	}
}
