package conf

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// cleanEnv unsets the configuration file variable and every key's
// variable for the test, so that the machine's environment cannot change
// what is parsed.
func cleanEnv(t *testing.T) {
	t.Helper()
	names := []string{EnvConfig}
	for _, k := range fileKeys() {
		names = append(names, k.envName())
	}
	for _, name := range names {
		t.Setenv(name, "") // restores the variable after the test
		os.Unsetenv(name)
	}
}

func loadRestore(t *testing.T, args ...string) RestoreConfig {
	t.Helper()
	rc, action, err := LoadRestore(args)
	if err != nil || action != ActionRun {
		t.Fatalf("LoadRestore(%q) = %v, %v", args, action, err)
	}
	return rc
}

var restorePos = []string{"s3://b/p", "pg", "latest", "/srv/restore"}

func withPos(args ...string) []string { return append(args, restorePos...) }

func TestRestoreDefaults(t *testing.T) {
	cleanEnv(t)
	rc := loadRestore(t, restorePos...)
	want := RestoreConfig{Config: Defaults(), BackupID: "latest", RecoveryDir: "/srv/restore"}
	want.DestinationURL, want.ServerName = "s3://b/p", "pg"
	if !reflect.DeepEqual(rc, want) {
		t.Errorf("got\n%+v\nwant\n%+v", rc, want)
	}
	if rc.Tablespaces != nil {
		t.Errorf("no rule gave tablespaces %v", rc.Tablespaces)
	}
	if err := rc.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestRestoreOptions(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args  []string
		check func(RestoreConfig) bool
	}{
		{[]string{"-v"}, func(rc RestoreConfig) bool { return rc.Verbose == 1 }},
		{[]string{"--verbose", "-vv"}, func(rc RestoreConfig) bool { return rc.Verbose == 3 && rc.LogLevel() == 10 }},
		{[]string{"-qq"}, func(rc RestoreConfig) bool { return rc.Quiet == 2 }},
		{[]string{"--quiet"}, func(rc RestoreConfig) bool { return rc.Quiet == 1 }},
		{[]string{"-t"}, func(rc RestoreConfig) bool { return rc.Test }},
		{[]string{"--test"}, func(rc RestoreConfig) bool { return rc.Test }},
		{[]string{"-tv"}, func(rc RestoreConfig) bool { return rc.Test && rc.Verbose == 1 }},
		{[]string{"--cloud-provider", "google-cloud-storage"}, func(rc RestoreConfig) bool { return rc.CloudProvider == "google-cloud-storage" }},
		{[]string{"--cloud-provider=azure-blob-storage"}, func(rc RestoreConfig) bool { return rc.CloudProvider == "azure-blob-storage" }},
		{[]string{"--endpoint-url", "http://127.0.0.1:9000"}, func(rc RestoreConfig) bool { return rc.EndpointURL == "http://127.0.0.1:9000" }},
		{[]string{"-P", "prod"}, func(rc RestoreConfig) bool { return rc.Profile == "prod" }},
		{[]string{"-Pprod"}, func(rc RestoreConfig) bool { return rc.Profile == "prod" }},
		{[]string{"--aws-profile", "prod"}, func(rc RestoreConfig) bool { return rc.Profile == "prod" }},
		{[]string{"--profile", "old"}, func(rc RestoreConfig) bool { return rc.Profile == "old" }},
		{[]string{"--read-timeout", "30"}, func(rc RestoreConfig) bool { return rc.ReadTimeout == 30 }},
		{[]string{"--azure-credential", "azure-cli"}, func(rc RestoreConfig) bool { return rc.Credential == "azure-cli" }},
		{[]string{"--credential", "managed-identity"}, func(rc RestoreConfig) bool { return rc.Credential == "managed-identity" }},
		{[]string{"--default", "default"}, func(rc RestoreConfig) bool { return rc.Credential == "default" }},
		{[]string{"--tablespace", "tbs1:/srv/tbs1"}, func(rc RestoreConfig) bool {
			return reflect.DeepEqual(rc.Tablespaces, map[string]string{"tbs1": "/srv/tbs1"})
		}},
		{[]string{"--tab=tbs1:/srv/tbs1"}, func(rc RestoreConfig) bool { return rc.Tablespaces["tbs1"] == "/srv/tbs1" }},
		{[]string{"--snapshot-recovery-instance", "vm1"}, func(rc RestoreConfig) bool { return rc.SnapshotRecoveryInstance == "vm1" }},
		{[]string{"--snapshot-recovery-zone", "europe-west1-b"}, func(rc RestoreConfig) bool {
			return rc.Snapshot.GCPZone == "europe-west1-b" && rc.zoneFlag == "--snapshot-recovery-zone"
		}},
		{[]string{"--gcp-zone", "europe-west1-c"}, func(rc RestoreConfig) bool {
			return rc.Snapshot.GCPZone == "europe-west1-c" && rc.zoneFlag == "--gcp-zone"
		}},
		{[]string{"--aws-region", "eu-west-1"}, func(rc RestoreConfig) bool { return rc.Snapshot.AWSRegion == "eu-west-1" }},
		{[]string{"--azure-resource-group", "rg"}, func(rc RestoreConfig) bool { return rc.Snapshot.AzureResourceGroup == "rg" }},
		{[]string{"--target-tli", "2"}, func(rc RestoreConfig) bool { return rc.TargetTLI == "2" }},
		{[]string{"--target-lsn", "3/64000000"}, func(rc RestoreConfig) bool { return rc.TargetLSN == "3/64000000" && rc.TargetTime == "" }},
		{[]string{"--target-time", "2026-11-24 12:00:00.123"}, func(rc RestoreConfig) bool {
			return rc.TargetTime == "2026-11-24 12:00:00.123" && rc.TargetLSN == ""
		}},
		{[]string{"--target-lsn", "1/0", "--target-lsn", "2/0"}, func(rc RestoreConfig) bool { return rc.TargetLSN == "2/0" }},
		{[]string{"-J", "8"}, func(rc RestoreConfig) bool { return rc.Jobs == 8 }},
		{[]string{"-J4"}, func(rc RestoreConfig) bool { return rc.Jobs == 4 }},
		{[]string{"--jobs=6"}, func(rc RestoreConfig) bool { return rc.Jobs == 6 }},
		{[]string{"--no-verify"}, func(rc RestoreConfig) bool { return rc.NoVerify }},
		{[]string{"--no"}, func(rc RestoreConfig) bool { return rc.NoVerify }},
		{[]string{"--json-summary", "/run/restore.json"}, func(rc RestoreConfig) bool { return rc.JSONSummary == "/run/restore.json" }},
		{[]string{"--log-format", "json"}, func(rc RestoreConfig) bool { return rc.LogFormat == "json" }},
	} {
		rc := loadRestore(t, withPos(c.args...)...)
		if !c.check(rc) {
			t.Errorf("LoadRestore(%q) gave %+v", c.args, rc)
		}
		if rc.DestinationURL != "s3://b/p" || rc.ServerName != "pg" || rc.BackupID != "latest" || rc.RecoveryDir != "/srv/restore" {
			t.Errorf("%q: positionals %q %q %q %q", c.args, rc.DestinationURL, rc.ServerName, rc.BackupID, rc.RecoveryDir)
		}
	}
	// Options may come among and after the positional arguments, as
	// argparse reads them.
	rc := loadRestore(t, "s3://b/p", "pg", "-J", "3", "20261124T120000", "--no-verify", "/srv/r", "--target-tli", "latest")
	if rc.BackupID != "20261124T120000" || rc.RecoveryDir != "/srv/r" || rc.Jobs != 3 || !rc.NoVerify || rc.TargetTLI != "latest" {
		t.Errorf("interleaved: %+v", rc)
	}
	rc = loadRestore(t, "--", "s3://b/p", "pg", "-odd-id", "/srv/r")
	if rc.BackupID != "-odd-id" {
		t.Errorf("after --: backup ID %q", rc.BackupID)
	}
}

func TestRestoreHelpAndVersion(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want Action
	}{
		{[]string{"--help"}, ActionHelp},
		{[]string{"--he"}, ActionHelp},
		{[]string{"-V"}, ActionVersion},
		{[]string{"--version", "--bogus"}, ActionVersion},
	} {
		if _, action, err := LoadRestore(c.args); action != c.want || err != nil {
			t.Errorf("%q: %v, %v; want %v", c.args, action, err, c.want)
		}
	}
}

func TestRestorePositionals(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "the following arguments are required: source_url, server_name, backup_id, recovery_dir"},
		{[]string{"s3://b/p"}, "the following arguments are required: server_name, backup_id, recovery_dir"},
		{[]string{"s3://b/p", "pg"}, "the following arguments are required: backup_id, recovery_dir"},
		{[]string{"s3://b/p", "pg", "latest"}, "the following arguments are required: recovery_dir"},
		{[]string{"-t", "s3://b/p", "pg"}, "the following arguments are required: backup_id, recovery_dir"},
		{[]string{"s3://b/p", "pg", "latest", "/srv/r", "extra"}, "unrecognized arguments: extra"},
		{[]string{"s3://b/p", "pg", "latest", "/srv/r", "x", "y"}, "unrecognized arguments: x y"},
		{[]string{"-z", "s3://b/p", "pg", "latest", "/srv/r"}, "unrecognized arguments: -z"},
		{[]string{"--gzip", "s3://b/p", "pg", "latest", "/srv/r", "x"}, "unrecognized arguments: --gzip x"},
		// Options of barman-cloud-backup only are unknown here.
		{[]string{"--immediate-checkpoint", "s3://b/p", "pg", "latest", "/srv/r"}, "unrecognized arguments: --immediate-checkpoint"},
		{[]string{"--print-config", "s3://b/p", "pg", "latest", "/srv/r"}, "unrecognized arguments: --print-config"},
	} {
		_, _, err := LoadRestore(c.args)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg != c.msg || !ue.Usage {
			t.Errorf("%q: %#v, want the usage and %q", c.args, err, c.msg)
		}
	}
}

func TestRestoreParseErrors(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-v", "-q"}, "argument -q/--quiet: not allowed with argument -v/--verbose"},
		{[]string{"--quiet", "--verbose"}, "argument -v/--verbose: not allowed with argument -q/--quiet"},
		{[]string{"--target-lsn", "3/0", "--target-time", "2026-01-01"}, "argument --target-time: not allowed with argument --target-lsn"},
		{[]string{"--target-time", "2026-01-01", "--target-lsn", "3/0"}, "argument --target-lsn: not allowed with argument --target-time"},
		{[]string{"--target-tli", "0"}, "argument --target-tli: '0' is not a valid positive integer"},
		{[]string{"--target-tli", "-1"}, "argument --target-tli: '-1' is not a valid positive integer"},
		{[]string{"--target-tli", "two"}, "argument --target-tli: 'two' is not a valid input"},
		{[]string{"--target-tli", "Latest"}, "argument --target-tli: 'Latest' is not a valid input"},
		{[]string{"--target-tli", "0x2"}, "argument --target-tli: '0x2' is not a valid input"},
		{[]string{"--target", "3"}, "ambiguous option: --target could match --target-tli, --target-lsn, --target-time"},
		{[]string{"--snapshot", "x"}, "ambiguous option: --snapshot could match --snapshot-recovery-instance, --snapshot-recovery-zone"},
		{[]string{"-J", "0"}, "argument -J/--jobs: '0' is not a valid positive integer"},
		{[]string{"--jobs", "many"}, "argument -J/--jobs: 'many' is not a valid input"},
		{[]string{"--cloud-provider", "ftp"}, "argument --cloud-provider: invalid choice: 'ftp' (choose from 'aws-s3', 'azure-blob-storage', 'google-cloud-storage')"},
		{[]string{"--log-format", "xml"}, "argument --log-format: invalid choice: 'xml' (choose from 'text', 'json')"},
		{[]string{"--read-timeout", "soon"}, "argument --read-timeout: invalid int value: 'soon'"},
		{[]string{"--azure-credential", "password"}, "argument --azure-credential/--credential/--default: invalid choice: 'password'"},
		{[]string{"--no-verify=yes"}, "argument --no-verify: ignored explicit argument 'yes'"},
		{[]string{"--tablespace"}, "argument --tablespace: expected one argument"},
	} {
		// After the positional arguments, so that none is taken as a value.
		_, _, err := LoadRestore(append(append([]string{}, restorePos...), c.args...))
		var ue *UsageError
		if !errors.As(err, &ue) || !ue.Usage || !strings.HasPrefix(ue.Msg, c.msg) {
			t.Errorf("%q: %#v, want the usage and %q", c.args, err, c.msg)
		}
	}
}

func TestRestoreTargetTLI(t *testing.T) {
	cleanEnv(t)
	for in, want := range map[string]string{"1": "1", "42": "42", "007": "7", " 3 ": "3", "current": "current", "latest": "latest"} {
		if rc := loadRestore(t, withPos("--target-tli", in)...); rc.TargetTLI != want {
			t.Errorf("--target-tli %q: %q, want %q", in, rc.TargetTLI, want)
		}
	}
	if rc := loadRestore(t, restorePos...); rc.TargetTLI != "" {
		t.Errorf("no --target-tli: %q", rc.TargetTLI)
	}
}

func TestRestoreTablespaces(t *testing.T) {
	cleanEnv(t)
	rc := loadRestore(t, withPos("--tablespace", "tbs1:/srv/old", "--tablespace", `win:C:\data:x`,
		"--tablespace", "tbs1:/srv/new")...)
	want := map[string]string{"tbs1": "/srv/new", "win": `C:\data:x`}
	if !reflect.DeepEqual(rc.Tablespaces, want) {
		t.Errorf("tablespaces %q, want %q", rc.Tablespaces, want)
	}
	for _, rule := range []string{"tbs1", "", "/srv/tbs1"} {
		_, _, err := LoadRestore(withPos("--tablespace", "ok:/x", "--tablespace", rule))
		var ue *UsageError
		want := "Invalid tablespace relocation rule '" + rule + "' (HINT: The valid syntax for a relocation rule is NAME:LOCATION)"
		if !errors.As(err, &ue) || ue.Msg != want || ue.Usage {
			t.Errorf("rule %q: %#v, want %q without the usage", rule, err, want)
		}
	}
	// An empty LOCATION would restore into the current directory.
	_, _, err := LoadRestore(withPos("--tablespace", "empty:"))
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "'empty:': LOCATION is empty") {
		t.Errorf("empty location: %#v", err)
	}
}

func TestRestoreValidate(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--snapshot-recovery-instance", "vm1"},
			"snapshot recovery (--snapshot-recovery-instance) is not supported by this implementation: it restores backups from object storage only"},
		{[]string{"--snapshot-recovery-zone", "z"}, "snapshot recovery (--snapshot-recovery-zone) is not supported"},
		{[]string{"--cloud-provider", "google-cloud-storage", "--gcp-zone", "z"}, "snapshot recovery (--gcp-zone) is not supported"},
		{[]string{"--aws-region", "eu-west-1"}, "snapshot recovery (--aws-region) is not supported"},
		{[]string{"--cloud-provider", "azure-blob-storage", "--azure-resource-group", "rg"}, "snapshot recovery (--azure-resource-group) is not supported"},
		{[]string{"--snapshot-recovery-instance", "vm1", "--aws-region", "r"}, "snapshot recovery (--snapshot-recovery-instance, --aws-region) is not supported"},
		{[]string{"--cloud-provider", "azure-blob-storage", "--endpoint-url", "http://127.0.0.1:9000"},
			"--endpoint-url is an option of the aws-s3 cloud provider, not of azure-blob-storage"},
		{[]string{"--cloud-provider", "google-cloud-storage", "--profile", "p"}, "-P/--aws-profile is an option of the aws-s3 cloud provider"},
		{[]string{"--credential", "azure-cli"}, "--azure-credential is an option of the azure-blob-storage cloud provider, not of aws-s3"},
		{[]string{"--target-lsn", "3-64000000"}, "invalid --target-lsn '3-64000000': an LSN is two hexadecimal numbers as X/Y, such as 3/64000000"},
		{[]string{"--target-lsn", "G/0"}, "invalid --target-lsn 'G/0'"},
		{[]string{"--target-lsn", "1/"}, "invalid --target-lsn '1/'"},
		{[]string{"--target-lsn", "/1"}, "invalid --target-lsn '/1'"},
		{[]string{"--target-lsn", "1/2/3"}, "invalid --target-lsn '1/2/3'"},
		{[]string{"--target-lsn", "100000000/0"}, "invalid --target-lsn '100000000/0'"},
	} {
		rc := loadRestore(t, withPos(c.args...)...)
		err := rc.Validate()
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, c.msg) || ue.Usage {
			t.Errorf("%q: %#v, want %q (exit 3)", c.args, err, c.msg)
		}
	}
	rc := loadRestore(t, "s3://b/p", "pg", "latest", "")
	var ue *UsageError
	if err := rc.Validate(); !errors.As(err, &ue) || !strings.Contains(ue.Msg, "recovery_dir is empty") {
		t.Errorf("empty recovery_dir: %v", err)
	}
	for _, args := range [][]string{
		{"--target-lsn", "3/64000000", "--target-tli", "current"},
		{"--target-lsn", "0/0"},
		{"--target-lsn", "FFFFFFFF/ffffffff"},
		{"--target-time", "not checked here"},
		{"--cloud-provider", "azure-blob-storage", "--azure-credential", "managed-identity"},
		{"--endpoint-url", "http://127.0.0.1:9000", "-P", "prod", "--read-timeout", "10"},
		{"--tablespace", "t:/x", "-J", "16", "--no-verify"},
	} {
		rc := loadRestore(t, withPos(args...)...)
		if err := rc.Validate(); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// The restore reads barman-cloud-backup's file and environment: the keys
// its options share, with the same precedence, and nothing else.
func TestRestorePrecedence(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, `destination_url = "s3://file/p"
server_name = "from-file"
jobs = 3
compression = "gzip"
log_format = "json"
json_summary = "/var/lib/backup-summary.json"
verbose = 1
[s3]
endpoint_url = "http://file:9000"
profile = "file-profile"
encryption = "AES256"
[snapshot]
aws_region = "eu-west-1"
gcp_zone = "europe-west1-b"
[tags]
team = "dba"
`)
	t.Setenv(EnvConfig, path)
	t.Setenv("BARMAN_CLOUD_BACKUP_JOBS", "5")
	t.Setenv("BARMAN_CLOUD_BACKUP_S3_ENDPOINT_URL", "http://env:9000")
	rc := loadRestore(t, restorePos...)
	for name, c := range map[string]struct{ got, want any }{
		"jobs (env over file)":              {rc.Jobs, 5},
		"endpoint (env over file)":          {rc.EndpointURL, "http://env:9000"},
		"profile (file over default)":       {rc.Profile, "file-profile"},
		"log_format (file)":                 {rc.LogFormat, "json"},
		"verbose (file)":                    {rc.Verbose, 1},
		"json_summary (the backup's)":       {rc.JSONSummary, ""},
		"compression (not the restore's)":   {rc.Compression, ""},
		"encryption (not the restore's)":    {rc.Encryption, ""},
		"tags (not the restore's)":          {rc.Tags, [][2]string(nil)},
		"snapshot keys (not the restore's)": {rc.Snapshot, Snapshot{AWSAwaitTimeout: 3600}},
		"positionals from the command line": {rc.DestinationURL + " " + rc.ServerName, "s3://b/p pg"},
		"config file recorded":              {rc.ConfigFile, path},
		"cloud_provider (default)":          {rc.CloudProvider, "aws-s3"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", name, c.got, c.want)
		}
	}
	if err := rc.Validate(); err != nil {
		t.Errorf("the backup's snapshot keys are the backup's: %v", err)
	}

	rc = loadRestore(t, withPos("-J", "7", "--endpoint-url", "http://flag:9000", "--log-format", "text")...)
	if rc.Jobs != 7 || rc.EndpointURL != "http://flag:9000" || rc.LogFormat != "text" {
		t.Errorf("flags over env and file: jobs %d, endpoint %q, log format %q", rc.Jobs, rc.EndpointURL, rc.LogFormat)
	}

	// --config wins over the variable, and only its file is read.
	other := writeFile(t, "jobs = 9\ncloud_provider = \"azure-blob-storage\"\n[azure]\ncredential = \"azure-cli\"\n")
	t.Setenv("BARMAN_CLOUD_BACKUP_JOBS", "")
	os.Unsetenv("BARMAN_CLOUD_BACKUP_JOBS")
	t.Setenv("BARMAN_CLOUD_BACKUP_S3_ENDPOINT_URL", "")
	os.Unsetenv("BARMAN_CLOUD_BACKUP_S3_ENDPOINT_URL")
	rc = loadRestore(t, withPos("--config", other)...)
	if rc.Jobs != 9 || rc.Credential != "azure-cli" || rc.CloudProvider != "azure-blob-storage" || rc.ConfigFile != other ||
		rc.LogFormat != "text" || rc.Profile != "" || rc.Verbose != 0 {
		t.Errorf("--config: %+v", rc)
	}
	if err := rc.Validate(); err != nil {
		t.Errorf("azure settings from the file: %v", err)
	}
}

// The shared file is checked whole: a bad value of a key the restore does
// not use is still an error (exit 3), as it is for the backup.
func TestRestoreFileErrors(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct{ text, msg string }{
		{"jobz = 2\n", `:1: unknown key "jobz"`},
		{"jobs = 0\n", `:1: key "jobs": '0' is not a valid positive integer`},
		{"compression = \"zip\"\n", `:1: key "compression": invalid choice: 'zip'`},
	} {
		path := writeFile(t, c.text)
		_, _, err := LoadRestore(withPos("--config", path))
		var fe *FileError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Msg, path) || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%q: %v, want %q after the path", c.text, err, c.msg)
		}
	}
	t.Setenv("BARMAN_CLOUD_BACKUP_S3_READ_TIMEOUT", "soon")
	_, _, err := LoadRestore(restorePos)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "BARMAN_CLOUD_BACKUP_S3_READ_TIMEOUT") {
		t.Errorf("bad environment value: %v", err)
	}
}

func TestRestoreHelp(t *testing.T) {
	h := RestoreHelp()
	var rc RestoreConfig
	for _, o := range restoreTable(&rc) {
		for _, f := range o.flags {
			if !strings.Contains(h, o.withArg(f)) {
				t.Errorf("help lacks %q", o.withArg(f))
			}
		}
	}
	// Barman 3.17's barman-cloud-restore --help, with its metavars, and
	// ours.
	for _, want := range []string{
		"usage: barman-cloud-restore [-V] [--help] [-v | -q] [-t]",
		"[--target-lsn TARGET_LSN | --target-time TARGET_TIME]",
		"source_url server_name backup_id recovery_dir\n",
		"  source_url  ", "  server_name  ", "  backup_id  ", "  recovery_dir  ",
		"-V, --version", "-v, --verbose", "-q, --quiet", "-t, --test",
		"--cloud-provider {aws-s3,azure-blob-storage,google-cloud-storage}",
		"--endpoint-url ENDPOINT_URL", "-P AWS_PROFILE, --aws-profile AWS_PROFILE", "--profile AWS_PROFILE",
		"--read-timeout READ_TIMEOUT", "--addressing-style {auto,virtual,path}",
		"--azure-credential {azure-cli,managed-identity,default}, --credential {azure-cli,managed-identity,default}",
		"--tablespace NAME:LOCATION", "tablespace relocation rule",
		"--snapshot-recovery-instance SNAPSHOT_RECOVERY_INSTANCE", "--snapshot-recovery-zone GCP_ZONE",
		"--aws-region AWS_REGION", "--gcp-zone GCP_ZONE", "--azure-resource-group AZURE_RESOURCE_GROUP",
		"--target-tli TARGET_TLI", "--target-lsn TARGET_LSN", "--target-time TARGET_TIME",
		"-J JOBS, --jobs JOBS", "parallel downloads", "--no-verify", "--json-summary FILE",
		"--log-format {text,json}", "--config FILE",
		"Extensions (not in Barman):", "Extra options for google-cloud-storage cloud provider:",
		"backup_manifest", "CRC-32C", "fsync", "global/pg_control", "3: bad input",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, not := range []string{"--gzip", "--immediate-checkpoint", "--snapshot-disk", "--print-config", "--tags", "-S MAX", "--snapshot-instance"} {
		if strings.Contains(h, not) {
			t.Errorf("help has barman-cloud-backup's %q", not)
		}
	}
	// --no-verify and --jobs are ours: among the extensions, after Barman's.
	if ext := strings.Index(h, "Extensions (not in Barman):"); ext < 0 || strings.Index(h, "  -J JOBS") < ext || strings.Index(h, "  --no-verify") < ext {
		t.Error("-J and --no-verify are not among the extensions")
	}
	if !strings.HasPrefix(h, RestoreUsage()) {
		t.Error("help does not start with the usage")
	}
}

// Every key the restore takes is one of barman-cloud-backup's, so
// example.toml documents it, and --config's help names it.
func TestRestoreKeysAreTheBackups(t *testing.T) {
	var rc RestoreConfig
	h := RestoreHelp()
	backup := map[string]bool{}
	for _, k := range fileKeys() {
		backup[k.key] = true
	}
	var n int
	for _, o := range restoreTable(&rc) {
		if o.key == "" {
			continue
		}
		n++
		if !backup[o.key] {
			t.Errorf("restore key %q is not barman-cloud-backup's", o.key)
		}
		if !strings.Contains(strings.Join(strings.Fields(h), " "), o.key) {
			t.Errorf("--config's help does not name %q", o.key)
		}
	}
	if n != 11 {
		t.Errorf("the restore takes %d keys, want 11", n)
	}
}
