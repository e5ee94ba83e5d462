package conf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgbackup/barman-cloud-backup/pg"
)

// RestoreProg is the restore's program name; it is Barman's, so scripts
// need no change.
const RestoreProg = "barman-cloud-restore"

const restoreDescription = "Download a backup made by barman-cloud-backup from the cloud into RECOVERY_DIR " +
	"(and its tablespaces where --tablespace says, else where they were), as Barman's barman-cloud-restore does, " +
	"with more: the archives are downloaded in parallel ranged reads (-J) and extracted as they stream in, " +
	"with no temporary files; every restored file is checked against the backup's backup_manifest while it " +
	"is written (size and CRC-32C) unless --no-verify; every file and directory is fsynced at the end, and " +
	"global/pg_control is written last, so that an unfinished restore cannot be started. " +
	"Exit 0: restored; 1: the restore failed (damage, a missing volume, a store failure, a destination not " +
	"empty, no such backup); 2: the cloud is unreachable (-t); 3: bad input; 4: other errors."

// RestoreConfig is barman-cloud-restore's command line (Barman 3.17's
// barman/clients/cloud_restore.py parse_arguments, over cloud_cli.py's
// create_argument_parser): the provider options and credentials it
// shares with barman-cloud-backup, in Config (SOURCE_URL as
// DestinationURL; also Jobs, JSONSummary, LogFormat, Verbose, Quiet,
// Test), and its own.
type RestoreConfig struct {
	Config
	// BackupID is a backup ID, a backup name, auto, or one of the
	// catalog's shortcuts latest, last, oldest, first, last-failed.
	BackupID    string
	RecoveryDir string
	// Tablespaces maps a tablespace's name to the directory it is
	// restored into, from the --tablespace NAME:LOCATION rules: split at
	// the first ":", a later rule for a name winning (Barman's
	// tablespace_map). LOCATION is as given, maybe empty or relative;
	// Barman takes its os.path.realpath. Nil when no rule was given.
	Tablespaces map[string]string
	// TargetTLI is "" (none), a positive decimal number, "current" or
	// "latest" (Barman's check_tli).
	TargetTLI string
	// TargetLSN and TargetTime are "" when not given; at most one is set.
	// Validate checks TargetLSN; TargetTime is the engine's to read.
	TargetLSN  string
	TargetTime string
	// NoVerify skips checking restored files against backup_manifest.
	NoVerify bool
	// SnapshotRecoveryInstance is accepted by name and refused by
	// Validate, as Config.Snapshot's GCPZone, AWSRegion and
	// AzureResourceGroup, which the restore's --gcp-zone,
	// --snapshot-recovery-zone, --aws-region and --azure-resource-group
	// set.
	SnapshotRecoveryInstance string

	// zoneFlag is the spelling the GCP zone came with, for the refusal.
	zoneFlag string
}

// sharedRow is barman-cloud-backup's row whose first spelling (or key, for
// a row only the file sets) is name: the restore takes it as it is, with
// its spellings, checks and TOML key.
func sharedRow(name string) *option {
	for _, o := range options {
		if len(o.flags) > 0 && o.flags[0] == name || len(o.flags) == 0 && o.key == name {
			return o
		}
	}
	panic("conf: no option " + name) // the restore names only declared rows
}

// restoreTable is the restore's option table: Barman's shared rows,
// barman-cloud-backup's where the meaning is the same, then its own rows,
// which set rc, then our extensions. Its rows with a key are the keys the
// restore takes from the shared TOML file and environment.
func restoreTable(rc *RestoreConfig) []*option {
	test := *sharedRow("-t")
	test.help = "check that the cloud source is reachable and the bucket exists, then exit"
	provider := *sharedRow("--cloud-provider")
	provider.help = "the object storage service the backup is on"
	jobs := *sharedRow("-J")
	jobs.group, jobs.help = groupExt, "number of parallel downloads (default: 2); memory grows by 8 MiB for each"
	// The file's json_summary is where the backup writes its report; a
	// restore writing there would overwrite what monitoring reads, so
	// the restore takes it from its own command line only.
	summary := *sharedRow("--json-summary")
	summary.key, summary.typ, summary.get = "", tNone, nil
	summary.help = "write the run's summary (backup ID, sizes, duration, status) to FILE as JSON, for monitoring"
	config := *sharedRow("--config")
	zone := func(flag string) func(*Config, string) error {
		return func(c *Config, v string) error { c.Snapshot.GCPZone, rc.zoneFlag = v, flag; return nil }
	}
	table := []*option{
		sharedRow("-V"), sharedRow("--help"), sharedRow("-v"), sharedRow("-q"), sharedRow("verbose"), sharedRow("quiet"),
		&test, &provider,
		sharedRow("--endpoint-url"), sharedRow("-P"), sharedRow("--profile"), sharedRow("--read-timeout"), sharedRow("--addressing-style"),
		sharedRow("--azure-credential"),

		{flags: []string{"--tablespace"}, kind: flagAppend, metavar: "NAME:LOCATION",
			help: "tablespace relocation rule: restore tablespace NAME into LOCATION instead of where it was; may be repeated",
			set:  func(_ *Config, v string) error { return rc.addTablespace(v) }},
		{flags: []string{"--snapshot-recovery-instance"}, kind: flagValue, metavar: "SNAPSHOT_RECOVERY_INSTANCE",
			help: "Instance where the disks recovered from the snapshots are attached (snapshot recovery is not supported)",
			set:  func(_ *Config, v string) error { rc.SnapshotRecoveryInstance = v; return nil }},
		{flags: []string{"--snapshot-recovery-zone"}, kind: flagValue, metavar: "GCP_ZONE",
			help: "Zone containing the instance and disks for the snapshot recovery (deprecated: replaced by --gcp-zone; not supported)",
			set:  zone("--snapshot-recovery-zone")},
		{flags: []string{"--aws-region"}, kind: flagValue, metavar: "AWS_REGION", group: groupS3,
			help: "Name of the AWS region where the instance and disks for snapshot recovery are located (not supported)",
			set:  setString(func(c *Config) *string { return &c.Snapshot.AWSRegion })},
		{flags: []string{"--gcp-zone"}, kind: flagValue, metavar: "GCP_ZONE", group: groupGCS,
			help: "Zone containing the instance and disks for the snapshot recovery (not supported)",
			set:  zone("--gcp-zone")},
		{flags: []string{"--azure-resource-group"}, kind: flagValue, metavar: "AZURE_RESOURCE_GROUP", group: groupAzure,
			help: "Resource group containing the instance and disks for the snapshot recovery (not supported)",
			set:  setString(func(c *Config) *string { return &c.Snapshot.AzureResourceGroup })},
		{flags: []string{"--target-tli"}, kind: flagValue, metavar: "TARGET_TLI",
			help: "target timeline: a positive number, current or latest; with backup_id auto, the backup is " +
				"the newest on it",
			set: func(_ *Config, v string) error { return rc.setTargetTLI(v) }},
		{flags: []string{"--target-lsn"}, kind: flagValue, metavar: "TARGET_LSN", exclusive: "target",
			help: "target LSN (Log Sequence Number), such as 3/64000000; with backup_id auto, the backup is the " +
				"newest that ended at or before it",
			set: func(_ *Config, v string) error { rc.TargetLSN = v; return nil }},
		{flags: []string{"--target-time"}, kind: flagValue, metavar: "TARGET_TIME", exclusive: "target",
			help: `target time. You can use any valid unambiguous representation. e.g: "YYYY-MM-DD HH:MM:SS.mmm"; ` +
				"with backup_id auto, the backup is the newest that ended at or before it",
			set: func(_ *Config, v string) error { rc.TargetTime = v; return nil }},

		&jobs,
		{flags: []string{"--no-verify"}, kind: flagTrue, group: groupExt,
			help: "do not check the restored files against the backup's backup_manifest (size and CRC-32C)",
			set:  func(_ *Config, _ string) error { rc.NoVerify = true; return nil }},
		&summary, sharedRow("--log-format"), &config,
	}
	// The keys are named from the table, so that the help cannot drift
	// from what LoadRestore takes.
	var keys []string
	for _, o := range table {
		if o.key != "" {
			keys = append(keys, o.key)
		}
	}
	config.help = "read settings from this TOML file, barman-cloud-backup's (default: $" + EnvConfig + "), " +
		"and $" + envPrefix + "* over it: the restore takes " + strings.Join(keys, ", ") +
		" and ignores the other keys; flags win over both"
	return table
}

// addTablespace reads a --tablespace rule as Barman's tablespace_map
// does: split at the first ":", so LOCATION may hold one; a later rule for
// the same name wins. Barman refuses a rule without ":" only when it
// restores, after finding the backup; the rule is as wrong before, so it
// is refused here, with Barman's words on one line and its exit code 3.
func (rc *RestoreConfig) addTablespace(rule string) error {
	name, location, ok := strings.Cut(rule, ":")
	if !ok {
		return &barmanError{msg: fmt.Sprintf("Invalid tablespace relocation rule '%s' "+
			"(HINT: The valid syntax for a relocation rule is NAME:LOCATION)", rule)}
	}
	if location == "" {
		// Barman restores into the current directory then, unchecked.
		return &barmanError{msg: fmt.Sprintf("Invalid tablespace relocation rule '%s': LOCATION is empty "+
			"(HINT: The valid syntax for a relocation rule is NAME:LOCATION)", rule)}
	}
	if rc.Tablespaces == nil {
		rc.Tablespaces = map[string]string{}
	}
	rc.Tablespaces[name] = location
	return nil
}

// setTargetTLI is Barman's check_tli: "current", "latest", or
// check_positive's positive integer, kept in decimal.
func (rc *RestoreConfig) setTargetTLI(v string) error {
	if v == "current" || v == "latest" {
		rc.TargetTLI = v
		return nil
	}
	n, err := checkPositive(v)
	if err != nil {
		return err
	}
	rc.TargetTLI = strconv.Itoa(n)
	return nil
}

// LoadRestore builds barman-cloud-restore's configuration as Load builds
// the backup's: defaults, then barman-cloud-backup's TOML file (--config
// or $BARMAN_CLOUD_BACKUP_CONFIG), then its BARMAN_CLOUD_BACKUP_*
// environment, then the command line, read with argparse's rules:
// SOURCE_URL SERVER_NAME BACKUP_ID RECOVERY_DIR and the options. The file
// and the environment are checked whole, as the backup checks them, but
// only the keys of the restore's rows are taken. A UsageError or a
// FileError is exit 3.
func LoadRestore(args []string) (RestoreConfig, Action, error) {
	rc := RestoreConfig{Config: Defaults()}
	table := restoreTable(&rc)
	shared := Defaults()
	if err := loadSettings(args, &shared); err != nil {
		return rc, ActionRun, err
	}
	rc.ConfigFile = shared.ConfigFile
	for _, o := range table {
		if o.key == "" {
			continue
		}
		// The value as --print-config writes it, through the row's checks
		// again: they passed once, so this cannot fail.
		if err := o.applyText(&rc.Config, fmt.Sprint(o.get(&shared))); err != nil {
			return rc, ActionRun, &FileError{Msg: fmt.Sprintf("%s: %v", o.key, err)}
		}
	}
	p := &parser{table: table, args: args, cfg: &rc.Config, seen: map[string]*option{}}
	if action, err := p.scan(); err != nil || action != ActionRun {
		return rc, action, err
	}
	pos := p.positional
	if len(pos) < 4 {
		missing := []string{"source_url", "server_name", "backup_id", "recovery_dir"}[len(pos):]
		return rc, ActionRun, usage("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	if unknown := append(p.unknown, pos[4:]...); len(unknown) > 0 {
		return rc, ActionRun, usage("unrecognized arguments: %s", strings.Join(unknown, " "))
	}
	rc.DestinationURL, rc.ServerName, rc.BackupID, rc.RecoveryDir = pos[0], pos[1], pos[2], pos[3]
	return rc, ActionRun, nil
}

// RestoreUsage is the restore's usage line, as argparse writes it.
func RestoreUsage() string {
	var rc RestoreConfig
	return usageOf(RestoreProg, restoreTable(&rc), "source_url", "server_name", "backup_id", "recovery_dir")
}

// restoreArguments are the restore's positional arguments, name and
// help, for --help and the manual.
var restoreArguments = [][2]string{
	{"source_url", "URL of the cloud source, such as a bucket in AWS S3: s3://bucket/path/to/folder " +
		"(or an access point's ARN in place of the bucket)"},
	{"server_name", "the name of the server as configured in Barman"},
	{"backup_id", "the backup ID, a backup name, auto (chosen by the target options), or latest, last, " +
		"oldest, first, last-failed"},
	{"recovery_dir", "the path to a directory for recovery; it must be absent or empty"},
}

// RestoreHelp is the restore's --help text, grouped as Barman's.
func RestoreHelp() string {
	var rc RestoreConfig
	return helpOf(RestoreUsage(), restoreDescription, restoreTable(&rc), restoreArguments)
}

// Validate refuses what the restore cannot do or what cannot be meant,
// after parsing: options of one cloud provider given with another (as
// Config.Validate), snapshot recovery, which Barman 3.17 does for snapshot
// backups and we do not, an empty RECOVERY_DIR, and a --target-lsn that is
// not an LSN. Each is a UsageError, exit 3.
func (rc *RestoreConfig) Validate() error {
	if err := rc.checkProviders(); err != nil {
		return err
	}
	zoneFlag := rc.zoneFlag
	if zoneFlag == "" {
		zoneFlag = "--gcp-zone"
	}
	var snapshot []string
	for _, o := range []struct {
		set  bool
		flag string
	}{
		{rc.SnapshotRecoveryInstance != "", "--snapshot-recovery-instance"},
		{rc.Snapshot.GCPZone != "", zoneFlag},
		{rc.Snapshot.AWSRegion != "", "--aws-region"},
		{rc.Snapshot.AzureResourceGroup != "", "--azure-resource-group"},
	} {
		if o.set {
			snapshot = append(snapshot, o.flag)
		}
	}
	if len(snapshot) > 0 {
		return &UsageError{Msg: fmt.Sprintf("snapshot recovery (%s) is not supported by this implementation: "+
			"it restores backups from object storage only", strings.Join(snapshot, ", "))}
	}
	if rc.RecoveryDir == "" {
		// Barman extracts into the current directory then, unchecked.
		return &UsageError{Msg: "recovery_dir is empty: give the directory to restore into"}
	}
	if rc.TargetLSN != "" {
		// Barman parses it only for backup_id auto, and exits 4 then;
		// it is as wrong with any backup ID.
		if _, err := pg.ParseLSN(rc.TargetLSN); err != nil {
			return &UsageError{Msg: fmt.Sprintf("invalid --target-lsn '%s': an LSN is two hexadecimal numbers "+
				"as X/Y, such as 3/64000000", rc.TargetLSN)}
		}
	}
	return nil
}
